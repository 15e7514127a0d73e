# pystack: the two commands are `make demo` and `make test`. Everything they need is installed here.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
APT_TOOLS := iputils-ping curl dnsmasq tcpdump iproute2 nftables netcat-openbsd
STAMP_APT := $(VENV)/.apt-done
STAMP_PIP := $(VENV)/.pip-done

.PHONY: install demo test test-unit test-integration test-slow bench clean soak

install: $(STAMP_APT) $(STAMP_PIP)

# Debian tools of the lab (../shared/lab.md). Skipped when every tool is already there.
$(STAMP_APT):
	@mkdir -p $(VENV)
	@if ! command -v ping curl dnsmasq tcpdump ip nft nc >/dev/null 2>&1; then \
		echo "installing Debian tools: $(APT_TOOLS)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_TOOLS) >/dev/null; \
	fi
	@touch $@

$(STAMP_PIP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'
	@touch $@

demo: install
	$(PY) scripts/demo.py

test: install
	$(PY) -m pytest -q tests

test-unit: install
	$(PY) -m pytest -q tests/unit

test-integration: install
	$(PY) -m pytest -q tests/integration

test-slow: install
	PYSTACK_SLOW=1 $(PY) -m pytest -q -m slow tests

bench: install
	$(PY) scripts/bench.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache

# Minutes of mixed traffic against the daemon; fails if memory keeps growing or a table passes its bound.
MINUTES ?= 10
soak: install
	$(PY) scripts/soak.py --minutes $(MINUTES)
