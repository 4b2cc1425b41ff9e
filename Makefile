# cnicore: `make demo` and `make test` work on a fresh Debian machine with python3 and make.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SYSTEM_PACKAGES := iproute2 iptables nftables containernetworking-plugins etcd-server strace
# The runtime the end-to-end tests drive (tests/e2e): podman with runc and conmon, and busybox for the image.
E2E_PACKAGES := podman runc conmon busybox-static fuse-overlayfs
IS_ROOT := $(shell [ "$$(id -u)" = 0 ] && echo yes)

.PHONY: demo test lint typecheck unit sysdeps _apt clean bench bench-quick mutate mutate-all

# The virtual environment, rebuilt when the project metadata changes.
$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
	  if [ "$(IS_ROOT)" = yes ]; then apt-get update -qq && apt-get install -y -qq python3-venv; fi; \
	  rm -rf $(VENV); $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

# Debian packages the kernel, differential, etcd and end-to-end tests use; installed only as root and
# only when missing (the end-to-end ones without recommends, in a second step so that their failure
# costs only those tests). Without them those tests skip and say why.
sysdeps:
	@$(MAKE) --no-print-directory _apt PACKAGES="$(SYSTEM_PACKAGES)" APT_OPTS="" \
	  WHO="the tests that need them"
	@$(MAKE) --no-print-directory _apt PACKAGES="$(E2E_PACKAGES)" APT_OPTS="--no-install-recommends" \
	  WHO="the podman end-to-end tests (tests/e2e)"

_apt:
	@if [ "$(IS_ROOT)" = yes ] && command -v apt-get >/dev/null; then \
	  missing=""; for p in $(PACKAGES); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	  done; \
	  if [ -n "$$missing" ]; then echo "installing:$$missing"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_OPTS) $$missing \
	      >/dev/null) || echo "warning: could not install$$missing; $(WHO) will skip"; \
	  fi; \
	fi

demo: $(VENV)/.installed
	$(VENV)/bin/cnicore demo

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check cnicore backends tests benchmarks

typecheck: $(VENV)/.installed
	$(VENV)/bin/mypy --strict cnicore backends

unit: $(VENV)/.installed
	$(PY) -m pytest -q

test: sysdeps $(VENV)/.installed lint typecheck unit

# Side-by-side benchmarks (figures as ratios to their anchors; see benchmarks/__main__.py). Writes the
# table into the README's Benchmarks section, headed by the commit and date it measured.
bench: sysdeps $(VENV)/.installed
	$(VENV)/bin/pip install -q -e '.[bench]' || echo "matplotlib unavailable: no occupancy chart"
	$(PY) -m benchmarks --readme

# The same with tiny sizes: a smoke test, not a measurement.
bench-quick: $(VENV)/.installed
	$(PY) -m benchmarks --quick

# Mutation testing of the safety-critical core (modules and tests: [tool.mutmut] in pyproject.toml; functions
# covered and those that must have no survivor: tests/mutate.py) on the Hypothesis "mutate" profile; prints every
# mutant not killed and the kill rates, and fails when a mutant of the stores' reserve/release paths or of GC's
# keep/release decision survives.
mutate: $(VENV)/.installed
	$(VENV)/bin/pip install -q -e '.[test,mutate]'
	rm -rf mutants
	$(PY) tests/mutate.py

mutate-all: $(VENV)/.installed
	$(VENV)/bin/pip install -q -e '.[test,mutate]'
	rm -rf mutants
	$(PY) tests/mutate.py --all

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis build *.egg-info mutants mutants.log
