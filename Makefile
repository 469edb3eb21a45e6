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
	rm -rf $(DEMO)
	$(BIN)/blursynth sample $(DEMO)/clip
	$(BIN)/blursynth highspeed --src $(DEMO)/clip --tau 7,9,11 --latent 3 --out $(DEMO)/highspeed
	$(BIN)/blursynth preview $(DEMO)/highspeed --out $(DEMO)/highspeed.png
	$(BIN)/blursynth panorama --n 24 --latent 3 --out $(DEMO)/panorama
	$(BIN)/blursynth preview $(DEMO)/panorama --out $(DEMO)/panorama.png
	$(BIN)/blursynth verify $(DEMO)/highspeed
	$(BIN)/blursynth verify $(DEMO)/panorama
	@echo "demo: datasets and previews in $(DEMO)/"

test: setup
	$(BIN)/python -m pytest -n 2 -q -p no:logging

bench: setup
	$(BIN)/python benchmarks/bench_highspeed.py
	$(BIN)/python benchmarks/bench_panorama.py
	$(BIN)/python benchmarks/bench_dtb.py

clean:
	rm -rf $(VENV) $(DEMO) *.egg-info
