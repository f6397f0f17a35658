"""Unsupervised segmentation of football players by clustering pixels."""
