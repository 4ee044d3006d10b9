# The README's quick start: `make demo` and `make test` on a fresh machine with Python 3.11.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
RUN    := runs/demo

.PHONY: demo test test-fast lint bench clean

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

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_render.py
	$(BIN)/python benchmarks/bench_synth.py
	$(BIN)/python benchmarks/bench_train.py

clean:
	rm -rf $(VENV) runs .pytest_cache
