# controlarm: two commands on a fresh machine (Python >= 3.11, make, a C toolchain).
#   make demo   installs the pinned environment and runs the demo study end to end
#   make test   installs the pinned environment and runs the whole test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | cksum | cut -d' ' -f1)
OUT    ?= out/demo

.PHONY: demo test install clean

demo: $(STAMP)
	$(BIN)/controlarm demo --out $(OUT)

test: $(STAMP)
	$(BIN)/python -m pytest -q

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "controlarm needs Python >= 3.11; run: make PYTHON=python3.11 ...")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	rm -f $(VENV)/.installed-*
	touch $@

clean:
	rm -rf $(VENV) out build *.egg-info src/*.egg-info
