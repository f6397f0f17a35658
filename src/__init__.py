"""Unsupervised segmentation of football players by clustering pixels."""

import os

# OpenBLAS (numpy, scipy and OpenCV each load a copy) lets an idle thread spin for 2**28 processor cycles,
# about 0.1 s, before it sleeps. A forked frame worker starts those threads anew, and their spinning took
# a share of the cores during its first frame (120-150 ms against 35 ms later; 60 ms with this). 2**20
# cycles, well under a millisecond, still keeps threads awake between back-to-back calls. OpenBLAS reads
# the variable when it loads, so it is set before any module of the package imports numpy; a value the
# user exported wins.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "20")
