# Thin wrapper over CMake. The two commands the README opens with:
#   make demo   installs what is missing, builds, runs the main job on default data
#   make test   installs, builds, runs every test: unit, CLI, corpus round trips, a sanitizer
#               build (ASan + UBSan) of the unit and CLI tests, each fuzzer for FUZZ_SECONDS, and
#               the unit tests built for AVX2 where the machine has AVX-512 too
#   make package  a .deb (CPack) of a portable build: the tools, man pages, completions, docs,
#               the static library with headers, pkg-config and CMake files; in $(BUILD)-package
BUILD ?= build
FUZZ_SECONDS ?= 30
# CI builds with -Werror; local builds only warn.
WERROR ?= $(if $(CI),ON,OFF)
CMAKE_FLAGS ?=

.PHONY: all deps build demo test test-release test-sanitize test-fuzz test-avx2 bench install package clean

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release -DGEN_WERROR=$(WERROR) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD)

demo: build
	@bash scripts/demo.sh $(BUILD)

test: test-release test-sanitize test-fuzz test-avx2

# The AVX2 kernels (x86-64-v3) on a machine with AVX-512 too: the unit tests and the PyTorch
# golden check built for that level, so that whichever machine runs the tests runs both widths'
# logic. (On a machine without AVX-512 the release build is this one.)
test-avx2: deps
	@if grep -qw avx512f /proc/cpuinfo; then \
	  cmake -S . -B $(BUILD)-avx2 -G Ninja -DCMAKE_BUILD_TYPE=Release -DGEN_MARCH=x86-64-v3 \
	    -DGEN_WERROR=$(WERROR) >/dev/null && \
	  cmake --build $(BUILD)-avx2 --target unit_tests gpt_golden && \
	  ctest --test-dir $(BUILD)-avx2 --output-on-failure -R '^(unit|golden_pytorch)$$'; \
	else echo "test-avx2: no AVX-512 here; the release build ran the AVX2 kernels"; fi

test-release: build
	ctest --test-dir $(BUILD) --output-on-failure

test-sanitize: deps
	@cmake -S . -B $(BUILD)-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGEN_SANITIZE=ON -DGEN_WERROR=$(WERROR) >/dev/null
	@cmake --build $(BUILD)-asan
	ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --test-dir $(BUILD)-asan --output-on-failure --label-exclude 'corpus|docs|package'

test-fuzz: deps
	@CXX=clang++ cmake -S . -B $(BUILD)-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGEN_FUZZ=ON -DGEN_WERROR=$(WERROR) >/dev/null
	@cmake --build $(BUILD)-fuzz --target fuzz_token_stream fuzz_tokenizer_roundtrip fuzz_safetensors fuzz_png fuzz_idx fuzz_checkpoint fuzz_tokenizer_model
	bash scripts/run-fuzzers.sh $(BUILD)-fuzz $(FUZZ_SECONDS)

bench: build
	@$(MAKE) -C bench BUILD=$(abspath $(BUILD))

install: build
	cmake --install $(BUILD)

package: deps
	@cmake -S . -B $(BUILD)-package -G Ninja -DCMAKE_BUILD_TYPE=Release -DGEN_PORTABLE=ON -DCMAKE_INSTALL_PREFIX=/usr \
	  -DBUILD_TESTING=OFF -DGEN_WERROR=$(WERROR) >/dev/null
	@cmake --build $(BUILD)-package
	@cd $(BUILD)-package && cpack -G DEB >/dev/null && ls -1 $(CURDIR)/$(BUILD)-package/*.deb

clean:
	rm -rf $(BUILD) $(BUILD)-asan $(BUILD)-fuzz $(BUILD)-package out
