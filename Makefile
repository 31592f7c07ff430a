# Makefile — Aspen's front door. Every target installs missing Debian packages (as root; otherwise
# prints the apt-get line), configures with CMake and builds.
#   make console   the operations console: submit the seed's guests, watch jobs, VMs and logs live
#   make demo      an echo job and a data-processing job, with logs and timings
#   make test      all tests (cmocka under ASan+UBSan, KVM tests included, tmux console tests)
#   make bench     benchmarks printing JSON, beside the KVM floor of this machine
#   make bench-retention   claim latency with and without the retention pruner (minutes; its own
#                  target, not in make bench): RETENTION_ARGS='--old 1000000' for the million
#   make bench-pg  aspen bench engine on a private PostgreSQL server with fsync on, client and
#                  server CPU per job (minutes): PG_BENCH_ARGS='--rounds 5 OTHER/aspen' alternates
#   make fuzz      libFuzzer targets (clang, ASan+UBSan), FUZZ_SECONDS each (default 60): fuzz/README.md
BUILD ?= build
SANBUILD ?= build-san
FUZZBUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_CC ?= clang-14
JOBS ?= $(shell nproc)

RETENTION_ARGS ?=
PG_BENCH_ARGS ?=

.PHONY: all setup build console demo test bench bench-retention bench-pg fuzz clean

all: build

setup:
	@bash scripts/setup.sh

# Each phase says what it is about to do: a first build takes minutes (235 s on the project's
# 2-core machine with other builds running, far more when it is busier: docs/BENCHMARKS.md), and a
# Rust guest's cargo run prints nothing until it ends (scripts/build-guest.sh says "still
# building ..." when one runs long).
build: setup
	@echo "make: configuring $(BUILD)/ (cmake, RelWithDebInfo)"
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@echo "make: building $(BUILD)/ with $(JOBS) jobs: aspen, its tests and the guests (C with gcc, Rust with cargo offline, static Linux programs with musl-gcc)"
	@cmake --build $(BUILD) -j $(JOBS)

console: build
	@bash scripts/setup.sh --need-kvm
	@./$(BUILD)/aspen console

demo: build
	@bash scripts/setup.sh --need-kvm
	@./$(BUILD)/aspen demo

test: build
	@bash scripts/setup.sh --need-kvm
	@echo "make: building $(SANBUILD)/ (ASan+UBSan) with $(JOBS) jobs"
	@cmake -S . -B $(SANBUILD) -DCMAKE_BUILD_TYPE=Sanitize >/dev/null
	@cmake --build $(SANBUILD) -j $(JOBS)
	@echo "make: running the tests (ctest -j 2 in $(SANBUILD)/: many minutes; one line per test as it ends)"
	@cd $(SANBUILD) && ASPEN_BUILD=$(abspath $(BUILD)) ctest --output-on-failure -j 2

bench: build
	@bash scripts/setup.sh --need-kvm
	@bash bench/run.sh $(BUILD)

bench-retention: build
	@bash scripts/setup.sh --need-kvm
	@bash bench/retention.sh $(BUILD) $(RETENTION_ARGS)

bench-pg: build
	@bash scripts/setup.sh --need-kvm
	@bash bench/pg_engine.sh $(PG_BENCH_ARGS) $(BUILD)/aspen

# Its own build directory, configured with clang; guests are still built with gcc.
fuzz: setup
	@bash scripts/setup.sh --need-kvm
	@cmake -S fuzz -B $(FUZZBUILD) -DCMAKE_C_COMPILER=$(FUZZ_CC) >/dev/null
	@cmake --build $(FUZZBUILD) -j $(JOBS)
	@FUZZ_SECONDS=$(FUZZ_SECONDS) bash fuzz/run.sh $(FUZZBUILD)

clean:
	rm -rf $(BUILD) $(SANBUILD) $(FUZZBUILD) target
