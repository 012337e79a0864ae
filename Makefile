# Set-up and run loops: each target installs the package into one virtual environment
# (created on first use) and runs something, printing how long the install and the run took.
#
#   make demo       install, then the demo (python -m jax_robocache.demo)
#   make test       install, then the test suite (pytest -q tests)
#   make bench      install, then the benchmark suite (GPU machines; SUITE=quick|full)
#   make profile    install, then an Nsight Compute capture of OP (GPU machines; OP=resample)
#   make install    only the install;   make clean-venv   remove the environment
#
# One install holds every extra (test, demo, io, bench), so switching targets never
# reinstalls. Build requirements (pyproject's [build-system]) are installed into the
# environment and the package is built without build isolation: the CMake build
# directory (build/<wheel tag>) then sees the same compiler, jaxlib and nanobind paths
# every time, so a re-install recompiles only what changed (with build isolation every
# install gets a fresh temporary environment, new include paths, and recompiles the whole
# CUDA extension).
#
# CUDA: ON (compile the kernels) when nvidia-smi lists a GPU, else OFF: the fast CPU-only
# build (the ops run their jax.numpy twins). Override with `make test CUDA=ON`.
#
# Variables: PYTHON (the interpreter that creates the environment, python3), VENV (.venv),
# CUDA (ON/OFF), JAX (pip requirement for jax/jaxlib, default: the newest in pyproject's
# range), PYTEST_ARGS, DEMO_ARGS, SUITE, OP.

PYTHON ?= python3
VENV ?= .venv
CUDA ?= $(shell nvidia-smi -L >/dev/null 2>&1 && echo ON || echo OFF)
JAX ?=
EXTRAS ?= test,demo,io,bench
PYTEST_ARGS ?= -q tests
DEMO_ARGS ?=
SUITE ?= quick
OP ?= resample

BIN := $(VENV)/bin
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.PHONY: install demo test bench profile clean-venv

# $(call timed,LABEL,COMMAND): runs COMMAND, then prints LABEL and the seconds it took.
define timed
start=$$(date +%s%N); $(2); \
  ms=$$(( ($$(date +%s%N) - start) / 1000000 )); \
  printf '== %s took %d.%01d s\n' "$(1)" $$((ms / 1000)) $$((ms % 1000 / 100))
endef

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	@$(call timed,install (CUDA=$(CUDA)),\
	  $(BIN)/python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['build-system']['requires']))" > $(VENV)/build-requires.txt && \
	  $(BIN)/python -m pip install --quiet -r $(VENV)/build-requires.txt "cmake>=3.24" ninja \
	    $(if $(JAX),"jax$(JAX)" "jaxlib$(JAX)") && \
	  CMAKE_ARGS="-DROBOCACHE_CUDA=$(CUDA) $${CMAKE_ARGS:-}" \
	    $(BIN)/python -m pip install --quiet --no-build-isolation ".[$(EXTRAS)]")
	@cd / && $(abspath $(BIN))/python -c "import jax_robocache as r; i = r.info(); print('jax_robocache', i['version'], 'jax', i['jax'], '| CUDA kernels compiled:', i['cuda_kernels_compiled'], '|', i['kernels_unavailable_reason'] or 'CUDA kernels in use')"

# Run outside the checkout (python -m puts the working directory first on sys.path, where
# the source tree would shadow the installed package); the plot lands in demo_out/.
demo: install
	@mkdir -p demo_out
	@$(call timed,demo,cd demo_out && $(abspath $(BIN))/python -m jax_robocache.demo $(DEMO_ARGS))

# pytest, not python -m pytest: the installed package is tested, not the source tree.
test: install
	@$(call timed,tests,$(BIN)/pytest $(PYTEST_ARGS))

bench: install
	@$(call timed,benchmarks ($(SUITE)),$(BIN)/python benchmarks/run.py --suite $(SUITE) --out bench_out)

profile: install
	@$(call timed,profile ($(OP)),PYTHON=$(abspath $(BIN))/python OUT=$(CURDIR)/profile_out bash benchmarks/profile.sh $(OP))

clean-venv:
	rm -rf $(VENV)
