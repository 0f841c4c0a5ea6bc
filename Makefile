# cdinn: every target installs what it needs first (`setup`), so any of them works on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
CDINN  := $(BIN)/cdinn
PYTEST_ARGS ?=

.PHONY: setup demo test train evaluate lint clean quantize firmware csim synth bench bench-compare quality

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

## demo: simulate patterns, reconstruct them with the shipped default networks, compare with ER/HIO
demo: setup
	mkdir -p results/demo
	$(CDINN) simulate --n 200 --seed 7 --position random --oversampled --out results/demo/patterns.h5
	$(CDINN) reconstruct results/demo/patterns.h5:/diffraction results/demo/reconstruction.h5
	$(CDINN) evaluate --test-n 200 --seed 7 --refine auto --family-n 100 --effect-n 50 --out results/demo/evaluation
	@echo "demo results in results/demo (evaluation/table.md, evaluation/fig*.png)"

## test: lint (ruff + mypy), then every test and every benchmark once (timings off)
test: lint
	$(BIN)/python -m pytest tests benchmarks --benchmark-disable $(PYTEST_ARGS)

## train: reproduce the shipped weights and record test metrics in their cards: for each set its stages in order,
## each a checked-in recipe (model/recipes/<set>-stage<k>.yml) starting from the previous stage's weights; the last
## stage's networks become model/weights/<set>. `robust` (the default) trains on the broad distribution, `edge` on
## the paper's, `paper` on the paper's (stages 1-3) then on the broad one (stages 4-5) (docs/quality.md).
train: setup
	for set in robust edge paper; do \
		init=; \
		for recipe in model/recipes/$$set-stage*.yml; do \
			stage=build/$$(basename $$recipe .yml); \
			$(CDINN) train --recipe $$recipe $${init:+--init $$init} --out $$stage || exit 1; \
			init=$$stage; \
		done; \
		rm -rf model/weights/$$set && cp -r $$init model/weights/$$set && \
		$(CDINN) export-onnx --net $$set || exit 1; \
	done
	$(CDINN) evaluate --refine auto --update-cards --out results/evaluation

evaluate: setup
	$(CDINN) evaluate --refine auto --out results/evaluation

## quality: refinement curve, noise sweep and the training-choice ablation (docs/quality.md)
quality: setup
	$(CDINN) refine-curve --out results/refine
	$(CDINN) noise-sweep --out results/noise
	$(CDINN) ablation --out results/ablation

## lint: ruff (rules, then the formatter's check: `ruff format .` fixes it), then mypy on the package as
## installed (cdinn.model = model/, ...: a tree of links, see pyproject)
TYPECHECK := build/typecheck
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	rm -rf $(TYPECHECK) && mkdir -p $(TYPECHECK)/cdinn
	for f in cdinn/*.py cdinn/cli cdinn/evaluation; do ln -s $(CURDIR)/$$f $(TYPECHECK)/cdinn/; done
	for p in model quantize firmware host; do ln -s $(CURDIR)/$$p $(TYPECHECK)/cdinn/$$p; done
	cd $(TYPECHECK) && $(CURDIR)/$(BIN)/mypy --config-file $(CURDIR)/pyproject.toml -p cdinn

clean:
	rm -rf results/demo .pytest_cache build *.egg-info
	find . -name __pycache__ -not -path './$(VENV)/*' -prune -exec rm -rf {} +

## quantize: prune + QAT a network set (NET=default|edge|paper; writes model/weights/<set>-q and a report)
NET ?= default
QUANTIZE := --bits 10 --sparsity 0.15 --prune-epochs 2 --prune-lr 1e-4 --epochs 5 --lr 1e-4 --lr-schedule cosine
quantize: setup
	$(CDINN) quantize --net $(NET) $(QUANTIZE)

## firmware: hls4ml projects of the set's quantized networks (the default network by default), compiled
## emulation, bit-accuracy validation, C simulation, estimates, summary.json and report in build/firmware/<set>
firmware: setup
	$(CDINN) firmware --net $(NET)

## csim: every project's own C test bench built with g++ and compared with its expected predictions
csim: setup
	$(CDINN) csim --build build/firmware/$(NET)

## synth: vendor C synthesis + co-simulation (needs Vitis HLS on PATH; fails with one line otherwise)
SYNTH_PROJECT ?= build/firmware/$(NET)/shape
synth: setup
	$(CDINN) synth --project $(SYNTH_PROJECT)

## bench: the latency benchmark suite (pytest-benchmark), saved under results/benchmarks, then summarised
BENCH_STORAGE := results/benchmarks
BENCH_OPTS = benchmarks --benchmark-only --benchmark-storage=file://$(BENCH_STORAGE) --benchmark-columns=median,iqr,rounds
bench: setup
	$(BIN)/python -m pytest $(BENCH_OPTS) --benchmark-autosave $(BENCH_ARGS)
	$(BIN)/python benchmarks/report.py --storage $(BENCH_STORAGE) --out $(BENCH_STORAGE)/summary

## bench-compare: rerun and compare with a stored run (BASELINE=0001), failing on regressions beyond FAIL
BASELINE ?= 0001
FAIL ?= median:25%
bench-compare: setup
	$(BIN)/python -m pytest $(BENCH_OPTS) --benchmark-compare=$(BASELINE) --benchmark-compare-fail=$(FAIL) $(BENCH_ARGS)
