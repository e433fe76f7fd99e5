# Thin wrapper around CMake; the README's commands.
#
#   make / make build   configure and build build/ (RelWithDebInfo)
#   make deps           install the Debian packages `make test` needs
#   make deps-PROFILE   those of one profile of scripts/install-deps.sh:
#                       build bench test instr fuzz soak format peers
#                       python all
#   make test           build and run the tests plain, with ASan+UBSan
#                       (build-asan/) and with TSan (build-tsan/); each
#                       ctest run has every test twice, on epoll and as
#                       NAME@io_uring (ZINX_IO_BACKEND=io_uring); not
#                       the tests labelled cluster-long (make
#                       cluster-test)
#   make test-plain | test-asan | test-tsan   one of those stages
#   make demo           run scripts/demo.sh against build/
#   make mmo            the MMO demo live: zinx-mmo, 300 bots and the URL
#                       of the map, until Ctrl-C (scripts/mmo.sh;
#                       MMO_PLAYERS, MMO_MOVE_HZ, MMO_CHAT_HZ)
#   make cluster-demo   the MMO demo on two nodes behind HAProxy: nats-server,
#                       two zinx-mmo nodes, HAProxy and 200 bots on
#                       127.0.0.1, what to connect to, until Ctrl-C
#                       (scripts/cluster-demo.sh; CLUSTER_PORT,
#                       CLUSTER_PLAYERS, ...)
#   make cluster-test   the tests of over a minute (ctest label
#                       cluster-long, which make test leaves out: the
#                       MMO demo under 600 bots, the cluster's long
#                       ones) in the plain build; .ci/run runs it after
#                       make test
#   make mmo-bench      the MMO server's saturation under the bot swarm
#                       (about 6 minutes): a table into
#                       examples/mmo/README.md (scripts/mmo-bench.sh)
#   make bench          run scripts/bench.sh, scripts/bench-ws.sh,
#                       scripts/bench-python.sh (Python handlers against
#                       gevent and C) and scripts/bench-kcp.sh (KCP
#                       against TCP on a lossy link; root only, else
#                       skipped) against build/
#   make bench-instr    callgrind's user-space instructions per echoed
#                       frame of zinx-echo (w0, w10) and the bare epoll
#                       peer against bench/instr-budgets.txt; fails when a
#                       row is more than 5 % over budget (about 80 s;
#                       scripts/bench-instr.sh, BENCH_INSTR_ARGS passes
#                       options such as --budget-scale 0.5)
#   make fuzz           build the libFuzzer targets (clang, ASan+UBSan) in
#                       build-fuzz/ and run each FUZZ_SECONDS (60)
#   make soak           connection churn under load for SOAK_MINUTES (30),
#                       checking RSS, descriptors, threads (scripts/soak.sh)
#   make python         the Python binding (ziface, znet, zconf and the C
#                       module _zinx) built by pip from bindings/python
#                       against build/'s libzinx.a and installed into a
#                       virtual environment, $(PYTHON_VENV) (Debian's
#                       python3 refuses system-wide pip installs); prints
#                       how to run a program with it
#   make install        install to $(PREFIX) (DESTDIR is honoured)
#   make clean          remove the build trees
#   make format         clang-format the sources in place
#   make format-check   fail if clang-format would change anything
#
# Each target first checks the Debian packages it needs (a deps-PROFILE
# prerequisite; quick and silent when they are present): as root it
# installs what is missing, otherwise it prints the apt-get line to run.

CMAKE       ?= cmake
CTEST       ?= ctest
PREFIX      ?= /usr/local
BUILD       ?= build
BUILD_ASAN  ?= build-asan
BUILD_TSAN  ?= build-tsan
BUILD_TYPE  ?= RelWithDebInfo
# Sanitizer trees keep assertions on and avoid optimizer-only false
# positives of -Werror under instrumentation.
SAN_BUILD_TYPE ?= Debug
JOBS        ?= $(shell nproc 2>/dev/null || echo 2)
CTEST_JOBS  ?= 2
CMAKE_ARGS  ?=
FUZZ_SECONDS ?= 60
SOAK_MINUTES ?= 30
BENCH_INSTR_ARGS ?=
# Debian's interpreter (a pyenv or other python3 may come first on PATH),
# and the virtual environment make python installs the binding into.
PYTHON      ?= /usr/bin/python3
PYTHON_VENV ?= $(BUILD)/python-venv
FORMAT_DIRS := src include tests examples bench bindings
# deps-build, deps-test, ...: the Debian packages of one target
# (scripts/install-deps.sh PROFILE).
DEPS_PROFILES := build bench test instr fuzz soak format peers python all
DEPS_TARGETS := $(addprefix deps-,$(DEPS_PROFILES))

CTEST_FLAGS = --output-on-failure --no-tests=error -j$(CTEST_JOBS)
# make test leaves out the tests of over a minute (ctest label
# cluster-long): make cluster-test runs them.
CTEST_SHORT = -LE cluster-long

# $(call cmake_build,dir,build type,extra cmake args)
# MAKELEVEL is dropped so the generated makefiles do not print
# "Entering directory" around every line as recursive makes do.
define cmake_build
	$(CMAKE) -S . -B $(1) -DCMAKE_BUILD_TYPE=$(2) $(3) $(CMAKE_ARGS)
	env -u MAKELEVEL $(CMAKE) --build $(1) -j$(JOBS)
endef

# $(call stage,title)
define stage
	@printf '\n==================== %s ====================\n' "$(1)"
endef

# Prerequisites (deps-PROFILE, then build) must run in order; the parallelism
# lives inside cmake --build and ctest.
.NOTPARALLEL:

.PHONY: all build deps test test-plain test-asan test-tsan demo bench \
        bench-instr mmo mmo-bench cluster-demo cluster-test python \
        install clean format format-check fuzz soak $(DEPS_TARGETS)

all: build

$(DEPS_TARGETS): deps-%:
	@bash scripts/install-deps.sh $*

build: deps-build
	$(call cmake_build,$(BUILD),$(BUILD_TYPE),-DZINX_SANITIZE=)

deps: deps-test

# Runs every stage even after a failure so one run shows all of them,
# then fails if any stage failed.
test: deps-test
	@failed=""; \
	for s in plain asan tsan; do \
	    $(MAKE) --no-print-directory test-$$s || failed="$$failed $$s"; \
	done; \
	printf '\n==================== test summary ====================\n'; \
	for s in plain asan tsan; do \
	    case " $$failed " in \
	    *" $$s "*) printf '%-6s FAILED\n' $$s ;; \
	    *) printf '%-6s passed\n' $$s ;; \
	    esac; \
	done; \
	if [ -n "$$failed" ]; then \
	    echo "make test: FAILED:$$failed"; exit 1; \
	fi; \
	echo "make test: all stages passed"

test-plain: deps-test
	$(call stage,tests: plain $(BUILD_TYPE) ($(BUILD)/))
	$(call cmake_build,$(BUILD),$(BUILD_TYPE),-DZINX_SANITIZE=)
	cd $(BUILD) && $(CTEST) $(CTEST_FLAGS) $(CTEST_SHORT)

test-asan: deps-test
	$(call stage,tests: ASan+UBSan ($(BUILD_ASAN)/))
	$(call cmake_build,$(BUILD_ASAN),$(SAN_BUILD_TYPE),-DZINX_SANITIZE=address)
	cd $(BUILD_ASAN) && $(CTEST) $(CTEST_FLAGS) $(CTEST_SHORT)

test-tsan: deps-test
	$(call stage,tests: TSan ($(BUILD_TSAN)/))
	$(call cmake_build,$(BUILD_TSAN),$(SAN_BUILD_TYPE),-DZINX_SANITIZE=thread)
	cd $(BUILD_TSAN) && $(CTEST) $(CTEST_FLAGS) $(CTEST_SHORT)

demo: build
	bash scripts/demo.sh $(BUILD)

mmo: build
	bash scripts/mmo.sh $(BUILD)

mmo-bench: build
	bash scripts/mmo-bench.sh $(BUILD)

cluster-demo: deps-cluster build
	bash scripts/cluster-demo.sh $(BUILD)

# The plain build only: these are load and timing tests across processes
# and nodes (hundreds of bots, floods through NATS), which the sanitizers
# slow several-fold past their time bounds; the same code paths run under
# ASan+UBSan and TSan in make test's short cluster and MMO tests.
cluster-test: deps-test
	$(call stage,cluster tests: label cluster-long ($(BUILD)/))
	$(call cmake_build,$(BUILD),$(BUILD_TYPE),-DZINX_SANITIZE=)
	@cd $(BUILD) && if $(CTEST) -N -L cluster-long | grep -q 'Test *#'; then \
	    $(CTEST) $(CTEST_FLAGS) -L cluster-long; \
	else \
	    echo "make cluster-test: no test is labelled cluster-long"; \
	fi

# scripts/bench.sh installs (or names) the peers' packages itself; the
# benchmark runs without the peers that are missing.
bench: deps-bench build
	@if [ -f scripts/bench.sh ]; then \
	    bash scripts/bench.sh $(BUILD) && \
	    bash scripts/bench-ws.sh $(BUILD) && \
	    bash scripts/bench-python.sh $(BUILD) && \
	    bash scripts/bench-kcp.sh $(BUILD); \
	else \
	    echo "make bench: scripts/bench.sh is not there yet"; exit 1; \
	fi

# The same tree as `make build` (RelWithDebInfo): the budgets hold for it.
bench-instr: deps-instr build
	bash scripts/bench-instr.sh --check bench/instr-budgets.txt \
	    $(BENCH_INSTR_ARGS) $(BUILD)

fuzz: deps-fuzz
	FUZZ_SECONDS="$(FUZZ_SECONDS)" bash scripts/fuzz.sh

soak: deps-soak
	SOAK_MINUTES="$(SOAK_MINUTES)" bash scripts/soak.sh

# Only the static library is built (pip links _zinx to it): not the
# tests, examples and benchmarks of make build.
# --system-site-packages: Debian's own Python packages (setuptools and
# wheel for the build, gevent, pytest) stay visible in the environment.
# --no-build-isolation --no-index: pip builds with what is installed and
# never asks a package index (none is reachable from here). pip builds in
# bindings/python: what it leaves there is removed before (setuptools
# would ship files since deleted) and after.
python: deps-python
	$(CMAKE) -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) \
	    -DZINX_SANITIZE= $(CMAKE_ARGS)
	env -u MAKELEVEL $(CMAKE) --build $(BUILD) -j$(JOBS) --target zinx_static
	$(PYTHON) -m venv --system-site-packages $(PYTHON_VENV)
	rm -rf bindings/python/build bindings/python/zinx.egg-info
	ZINX_BUILD_DIR="$(abspath $(BUILD))" $(PYTHON_VENV)/bin/pip install \
	    --no-build-isolation --no-index --no-deps --force-reinstall \
	    --no-cache-dir --quiet bindings/python
	rm -rf bindings/python/build bindings/python/zinx.egg-info
	@cd / && "$(abspath $(PYTHON_VENV))/bin/python" -c 'import znet.server, _zinx'
	@printf '\nThe Python binding is installed in %s.\n' "$(abspath $(PYTHON_VENV))"
	@printf 'Run a program with it:\n'
	@printf '    %s/bin/python your_server.py\n' "$(abspath $(PYTHON_VENV))"
	@printf 'or activate the environment first, then use python3 as usual:\n'
	@printf '    . %s/bin/activate\n' "$(abspath $(PYTHON_VENV))"
	@printf '    python3 your_server.py\n'
	@printf 'It reads conf/zinx.json of the current folder (or $$ZINX_CONFIG_FILE_PATH).\n'

install: build
	DESTDIR="$(DESTDIR)" $(CMAKE) --install $(BUILD) --prefix "$(PREFIX)"

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_TSAN) build-fuzz build-soak build-soak-*

format: deps-format
	find $(wildcard $(FORMAT_DIRS)) -name '*.[ch]' -print0 \
	    | xargs -0 -r clang-format -i

format-check: deps-format
	find $(wildcard $(FORMAT_DIRS)) -name '*.[ch]' -print0 \
	    | xargs -0 -r clang-format --dry-run -Werror
