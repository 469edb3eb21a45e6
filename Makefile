# Two entry points (see README): `make demo` and `make test`. Both create .venv
# with the CPU build of torch pinned in constraints.txt.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
DEMO := demo-out

.PHONY: demo test setup bench clean

$(BIN)/blursynth: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[test]"
	touch $(BIN)/blursynth

setup: $(BIN)/blursynth

demo: setup
	$(BIN)/blursynth demo --out $(DEMO)

test: setup
	$(BIN)/python -m pytest -n 2 -q -p no:logging

bench: setup
	$(BIN)/python benchmarks/bench_highspeed.py
	$(BIN)/python benchmarks/bench_panorama.py
	$(BIN)/python benchmarks/bench_dtb.py

clean:
	rm -rf $(VENV) $(DEMO) *.egg-info
