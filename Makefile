# The README's quick start: `make demo` and `make test` on a fresh machine with Python 3.11.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
RUN    := runs/demo

TOOLKIT := .venv-toolkit
TSTAMP  := $(TOOLKIT)/.installed

.PHONY: demo test test-fast test-toolkit lint bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[train,mddnet,dev]"
	touch $(STAMP)

# the paper's setting: the 2hded preset with its own defaults (SYNDOF's focus rule, layered
# compositing); on the 8 samples as fast as gather with histogram focus (measured)
demo: $(STAMP)
	$(BIN)/defocuskit synth --source samples --input samples --output $(RUN)/samples.zarr \
		--camera 2hded --shard-size 4 --jobs 2 --overwrite
	$(BIN)/defocuskit preview $(RUN)/samples.zarr --split train -n 3 --output $(RUN)/preview.png
	$(BIN)/defocuskit inspect $(RUN)/samples.zarr
	$(BIN)/trainer fit --data $(RUN)/samples.zarr --run-dir $(RUN)/fit --preset demo --device cpu \
		--overwrite
	$(BIN)/trainer eval --data $(RUN)/samples.zarr --checkpoint $(RUN)/fit/best.pt --split test --device cpu
	$(BIN)/trainer predict --checkpoint $(RUN)/fit/best.pt --output $(RUN)/predict --device cpu \
		samples/scenes/room_06_rgb.png
	@echo
	@echo "demo outputs:"
	@echo "  dataset      $(RUN)/samples.zarr"
	@echo "  preview      $(RUN)/preview.png"
	@echo "  training run $(RUN)/fit (checkpoints, log.csv, loss_curves.png, val_panel.png)"
	@echo "  predictions  $(RUN)/predict"

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -x -m "not slow"

# the toolkit alone (no torch, as `pip install defocuskit` without the [train] extra): the
# suite collects and passes, the trainer's tests skipped with the reason
$(TSTAMP): pyproject.toml constraints.txt
	test -x $(TOOLKIT)/bin/python || $(PYTHON) -m venv $(TOOLKIT)
	$(TOOLKIT)/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev]"
	touch $(TSTAMP)

test-toolkit: $(TSTAMP)
	! $(TOOLKIT)/bin/python -c "import torch" 2>/dev/null
	$(TOOLKIT)/bin/python -m pytest -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_render.py
	$(BIN)/python benchmarks/bench_synth.py
	$(BIN)/python benchmarks/bench_train.py

clean:
	rm -rf $(VENV) $(TOOLKIT) runs .pytest_cache
