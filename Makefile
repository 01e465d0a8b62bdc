# User-facing targets. CMake + Ninja do the work; every target first makes sure the Debian
# packages are there (scripts/install-deps).
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
PREFIX     ?= /usr/local
JOBS       ?= $(shell nproc)
FUZZ_SECONDS ?= 10
CMAKE_FLAGS ?=

.PHONY: all build deps test test-k8s unit e2e asan fuzz fuzz-smoke lint install demo bench clean check-source

all: build

deps:
	@./scripts/install-deps

$(BUILD)/build.ninja: | deps
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null

build: deps $(BUILD)/build.ninja
	@cmake --build $(BUILD) -j $(JOBS)

# The whole suite: unit tests (cmocka) and end-to-end tests (pytest), then one summary line.
test: build check-source
	@./scripts/run-tests $(BUILD)

# The Kubernetes tests (tests/k8s): a real etcd + kube-apiserver on loopback, helm for the
# chart checks. The tools are built once from the Go module proxy (scripts/k8s-tools) and
# cached in $(BUILD)/k8s-tools; the first build takes several minutes.
test-k8s: build
	@./scripts/install-deps k8s
	@./scripts/k8s-tools $(BUILD) kube-apiserver helm
	@MR_BUILD_DIR=$(abspath $(BUILD)) /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/k8s

unit: build
	@cd $(BUILD) && ctest -L unit --output-on-failure -j $(JOBS)

e2e: build
	@cd $(BUILD) && ctest -L e2e --output-on-failure

$(ASAN_BUILD)/build.ninja: | deps
	@cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DMR_SANITIZE=ON $(CMAKE_FLAGS) >/dev/null

asan: deps $(ASAN_BUILD)/build.ninja
	@cmake --build $(ASAN_BUILD) -j $(JOBS)
	@./scripts/run-tests $(ASAN_BUILD)

$(FUZZ_BUILD)/build.ninja: | deps
	@CC=clang cmake -S . -B $(FUZZ_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMR_FUZZ=ON -DMR_TESTS=OFF $(CMAKE_FLAGS) >/dev/null

fuzz: deps $(FUZZ_BUILD)/build.ninja
	@cmake --build $(FUZZ_BUILD) -j $(JOBS)

fuzz-smoke: fuzz
	@./scripts/fuzz-smoke $(FUZZ_BUILD) $(FUZZ_SECONDS)

check-source:
	@./scripts/check-source
	@out=$$(./scripts/function-sizes --enforce --top 5); rc=$$?; \
	  printf '%s\n' "$$out" | sed -n '/^functions:/,$$p'; exit $$rc
	@out=$$(./scripts/check-mr-result --enforce); rc=$$?; printf '%s\n' "$$out" | tail -n 20; \
	  exit $$rc

lint: deps build check-source
	@./scripts/lint $(BUILD)

install: build
	@cmake --install $(BUILD) --prefix $(PREFIX)

demo: build
	@./scripts/demo $(BUILD)

bench: build
	@./scripts/install-deps bench
	@./bench/run $(BUILD)

clean:
	@rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
