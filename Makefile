# pystack: the two commands are `make demo` and `make test`. Everything they need is installed here.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP_PIP := $(VENV)/.pip-done

.PHONY: install debian-packages demo test test-unit test-integration test-slow bench clean soak conformance

install: debian-packages $(STAMP_PIP)

# Every Debian package in debian-packages.txt, asked about one by one each time (no stamp): exactly the
# missing ones are installed, so a package removed since the last run comes back.
debian-packages:
	@$(PYTHON) scripts/debian_packages.py

$(STAMP_PIP): pyproject.toml | debian-packages
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'
	@touch $@

demo: install
	$(PY) scripts/demo.py

# The unit suite runs a second time with the fast paths off (tests/unit/conftest.py): the layered way
# must pass every test too.
test: install
	$(PY) -m pytest -q tests
	PYSTACK_FAST_PATHS=0 $(PY) -m pytest -q tests/unit

test-unit: install
	$(PY) -m pytest -q tests/unit
	PYSTACK_FAST_PATHS=0 $(PY) -m pytest -q tests/unit

test-integration: install
	$(PY) -m pytest -q tests/integration

test-slow: install
	PYSTACK_SLOW=1 $(PY) -m pytest -q -m slow tests

bench: install
	$(PY) scripts/bench.py

# The packetdrill corpus (../shared/conformance/packetdrill beside the repository, or $PYSTACK_PACKETDRILL)
# judged on pystack's core; says so and passes when there is none. ARGS: e.g. --profile rfc, or script paths.
conformance: install
	$(PY) -m pystack.conformance $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache

# Minutes of mixed traffic against the daemon; fails if memory keeps growing or a table passes its bound.
MINUTES ?= 10
soak: install
	$(PY) scripts/soak.py --minutes $(MINUTES)
