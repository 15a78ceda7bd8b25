# bnlab: `make run` and `make test` each do the set-up they need (venv, packages, data).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.bnlab-installed
DATA_DIR ?= data
FASHION_MNIST := $(DATA_DIR)/FashionMNIST/raw/t10k-labels-idx1-ubyte
PYTEST_ARGS ?=

.PHONY: setup data run test test-torch lint figures report notebook tensorboard bench gpu-check gpu-wheels clean

## setup: virtual environment with bnlab and its dev extras, plus the default dataset
setup: $(STAMP) $(FASHION_MNIST)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

## data: Fashion-MNIST into $(DATA_DIR) (Debian's dataset-fashion-mnist, else torchvision)
data: $(FASHION_MNIST)

$(FASHION_MNIST): | $(STAMP)
	@if [ ! -d /usr/share/datasets/fashion-mnist ] && [ "$$(id -u)" = 0 ] \
		&& command -v apt-get >/dev/null; then \
		echo "installing Debian's dataset-fashion-mnist (apt-get update + install)"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq >/dev/null; apt-get install -y -qq dataset-fashion-mnist >/dev/null; \
	fi; true
	$(PY) -m bnlab.training.data prepare fashion_mnist --data-dir $(DATA_DIR)

## run: the main job, BN vs no-BN on Fashion-MNIST (python run.py +experiment=bn_vs_nobn)
run: setup
	$(PY) run.py +experiment=bn_vs_nobn

## test: the lint and format gate, then the whole test suite
test: setup lint
	$(PY) -m pytest $(PYTEST_ARGS)

## test-torch: the tests of the layers and of the compiled path against eager, under another
## torch in its own venv (TORCH=2.11.0, the oldest supported; PyPI's torch with its CUDA
## libraries is a download of several GB)
TORCH ?= 2.11.0
TORCH_VENV := .venv-torch-$(TORCH)
TORCH_TESTS ?= tests/test_compiled.py tests/test_batchnorm.py tests/test_norms.py tests/test_double_backward.py
test-torch: $(FASHION_MNIST)
	test -x $(TORCH_VENV)/bin/python || $(PYTHON) -m venv $(TORCH_VENV)
	$(TORCH_VENV)/bin/python -m pip install --quiet torch==$(TORCH) -e . pytest pytest-timeout
	$(TORCH_VENV)/bin/python -m pytest -q $(PYTEST_ARGS) $(TORCH_TESTS)

## lint: ruff check and ruff format --check over the whole code base
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

## figures: every figure into outputs/figures/, in one process (python -m bnlab.suite; runs
## missing experiments; FAST=1: small budget; BUDGET=cpu: the GPU-scale experiments at their
## CPU budget; at the full budget those run only on a GPU or with GPU_SCALE=1)
figures: setup
	MPLBACKEND=Agg $(PY) -m bnlab.suite $(if $(FAST),--fast,$(if $(BUDGET),--budget $(BUDGET)))

## report: the tables of docs/results.md and docs/reference.md, from outputs/ and the schema
report: $(STAMP)
	$(PY) -m bnlab.results.report

## notebook: open the walkthrough notebook in Jupyter
notebook: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/bn_walkthrough.ipynb

## tensorboard: browse every run under outputs/ (on a remote machine: ssh -L 6006:localhost:6006 host)
TB_PORT ?= 6006
tensorboard: $(STAMP)
	@echo "TensorBoard: http://localhost:$(TB_PORT)/  (Ctrl-C stops it; on a remote machine first run"
	@echo "  ssh -L $(TB_PORT):localhost:$(TB_PORT) <host>  on your own, then open that URL there)"
	$(VENV)/bin/tensorboard --logdir outputs --host 127.0.0.1 --port $(TB_PORT)

## clean: remove the virtual environment (keeps data/ and outputs/)
clean:
	rm -rf $(VENV)

## bench: speed ratios side by side (BN layer, training step, replicas, Figure 1 run, GPU), the
## suite's wall time from outputs/ (FULL=1: the full-budget runs of `make figures`) and where
## the longest jobs' steps go (matrix products, profiled)
bench: setup
	$(PY) -m bnlab.bench $(if $(FULL),--full)

## gpu-check: the whole GPU check on this machine's GPU: CUDA tests (compiled = eager there),
## bench's GPU section, paper_fig1 at 2,000 steps (scripts/gpu_check.sh)
gpu-check: $(STAMP)
	PYTHON=$(PY) scripts/gpu_check.sh

## gpu-wheels: Hydra & co. as wheels in .whl/ and Fashion-MNIST's four .gz files in
## .whl/fashion-mnist/, for scripts/gpu_check.sh on a GPU machine without PyPI (pure Python;
## GPU_PYTHON is that machine's Python version)
GPU_PYTHON ?= 3.12
gpu-wheels: $(STAMP)
	$(PY) -m pip download --quiet --no-deps --only-binary=:all: --python-version $(GPU_PYTHON) \
		--implementation py --abi none --platform any -d .whl \
		$$($(PY) -m pip list --format=freeze 2>/dev/null | grep -iE '^(hydra-core|omegaconf|hydra-joblib-launcher|hydra-submitit-launcher|submitit)==')
	$(PY) -m pip wheel --quiet --no-deps -w .whl \
		$$($(PY) -m pip list --format=freeze 2>/dev/null | grep -iE '^antlr4-python3-runtime==')
	mkdir -p .whl/fashion-mnist
	cp /usr/share/datasets/fashion-mnist/*.gz .whl/fashion-mnist/
