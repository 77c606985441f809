# tollgate: `make run` starts the stack with the demo tenant, `make test` runs every test.
# Both install what is missing first (Debian packages, the venv, the Cython build).

PY        := /usr/bin/python3
VENV      := .venv
VPY       := $(VENV)/bin/python
APT_PKGS  := kamailio kamailio-python3-modules kamailio-redis-modules kamailio-extra-modules \
             kamailio-utils-modules kamailio-postgres-modules rtpengine-daemon redis-server postgresql sip-tester \
             baresip-core espeak-ng sox python3-venv python3-dev gcc supervisor \
             g++ swig uuid-dev xz-utils tzdata
STAMP     := var/.stamp

.PHONY: all deps venv pjsua2 build run test test-unit test-integration test-e2e bench lint clean

all: build

# Debian packages: installed only when one is missing
$(STAMP)/apt: Makefile
	@mkdir -p $(STAMP)
	@missing=$$(for p in $(APT_PKGS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@touch $@
deps: $(STAMP)/apt

# the venv is made from Debian's python3: Kamailio's app_python3 embeds that interpreter
$(VENV)/.installed: requirements.txt $(STAMP)/apt
	@test -x $(VPY) || $(PY) -m venv $(VENV)
	$(VPY) -m pip install -q -r requirements.txt
	@touch $@
venv: $(VENV)/.installed

# pjsua2 from third_party/: PJSIP built with raised call limits (PyPI's pjsua2-python holds
# 4 calls a process). The wheel is built once (3-8 min) and installed over the venv; an
# older venv's pjsua2-python package would shadow it, so it goes.
PJSUA2_SRC := third_party/pjproject-2.15.1.tar.xz third_party/pjsua2/config_site.h \
              third_party/pjsua2/build.sh
$(STAMP)/pjsua2-wheel: $(PJSUA2_SRC) | $(STAMP)/apt $(VENV)/.installed
	third_party/pjsua2/build.sh $(VPY) var/wheels
	@touch $@
$(VENV)/.pjsua2: $(STAMP)/pjsua2-wheel $(VENV)/.installed
	$(VPY) -m pip install -q --no-deps --force-reinstall var/wheels/pjsua2-2.15.1-*.whl
	@if $(VPY) -m pip show -q pjsua2-python 2>/dev/null; then \
	  $(VPY) -m pip uninstall -q -y pjsua2-python; fi
	@touch $@
pjsua2: $(VENV)/.pjsua2

build: $(VENV)/.installed $(VENV)/.pjsua2 var/geoip/dbip-country.mmdb
	$(VPY) -m pip install -q --no-build-isolation --no-deps -e .
	$(VPY) setup.py -q build_ext --inplace
	$(VPY) -m ivr.prompts build var/prompts

# the GeoIP country database of the virtual PBX source filter (DB-IP, CC-BY-4.0, pinned
# and checked by tollgate/geoip.py)
var/geoip/dbip-country.mmdb: tollgate/geoip.py | $(VENV)/.installed
	$(VPY) -m tollgate.geoip install var/geoip

run: build
	$(VPY) -m tollgate.run

test: lint build
	$(VPY) -m pytest tests
	TOLLGATE_PUREPYTHON=1 $(VPY) -m pytest -q tests/unit -k hotpath

test-unit: build
	$(VPY) -m pytest tests/unit

test-integration: build
	$(VPY) -m pytest tests/integration

test-e2e: build
	$(VPY) -m pytest tests/e2e

bench: build
	$(VPY) -m bench

# ruff: pycodestyle, pyflakes, import order (ruff.toml); mypy: strict types (mypy.ini)
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check billing provisioning ivr kemi hotpath tollgate tests bench
	$(VENV)/bin/mypy

clean:
	rm -rf build hotpath/*.c hotpath/*.so *.egg-info
