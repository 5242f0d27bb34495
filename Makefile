# dettrain: see README.md. Every target works on a fresh Debian/Ubuntu machine
# after `make deps` (which `make demo` and `make test` run first).
GO      ?= go
BIN     ?= bin/dettrain
DEMO    ?= demo/shapes

.PHONY: all build deps demo test fuzz bench docker-test vet fmt clean

all: build

# deps installs what is missing: OpenCV and OpenBLAS (Debian packages), and
# Go itself is expected on PATH (go.dev/dl). apt-get runs only when a
# package is missing, so repeated runs are quick.
deps:
	@bash scripts/deps.sh

build: deps
	$(GO) build -o $(BIN) ./cmd/dettrain

# demo: generate the synthetic shapes set, train the demo model on it and
# print the test-split mAP (under 3 minutes on 2 idle cores).
demo: build
	$(BIN) synth --out $(DEMO) --images 2400 --seed 1
	$(BIN) train --config configs/demo.yaml

test: deps
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	# The packages a GPU machine builds (no OpenCV there) need no cgo.
	CGO_ENABLED=0 $(GO) build ./model/ ./train/ ./gpu/ ./infer/ ./onnx/ ./mpi/
	$(GO) test -count=1 -timeout 15m ./...
	# Fuzzing of every reader of outside input, 10 s each from the committed
	# seed corpora (testdata/fuzz/): each target asserts a round trip or an
	# error naming the input. Longer: make fuzz FUZZTIME=10m.
	$(MAKE) fuzz FUZZTIME=10s

FUZZTIME ?= 60s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParseCfg$$' -fuzztime $(FUZZTIME) ./model
	$(GO) test -run '^$$' -fuzz '^FuzzWeights$$' -fuzztime $(FUZZTIME) ./model
	$(GO) test -run '^$$' -fuzz '^FuzzVOCXML$$' -fuzztime $(FUZZTIME) ./data
	$(GO) test -run '^$$' -fuzz '^FuzzYOLOLabels$$' -fuzztime $(FUZZTIME) ./data
	$(GO) test -run '^$$' -fuzz '^FuzzCOCO$$' -fuzztime $(FUZZTIME) ./data
	$(GO) test -run '^$$' -fuzz '^FuzzParseTxtDetections$$' -fuzztime $(FUZZTIME) ./eval
	$(GO) test -run '^$$' -fuzz '^FuzzParseCOCOResults$$' -fuzztime $(FUZZTIME) ./eval

# docker-test: build the Dockerfile on a local Debian 12 base with podman
# (as root) and run the demo in it (~14 min cold, ~1 min cached).
docker-test:
	bash scripts/docker_test.sh

# bench: the CPU speed table against the PyTorch peer -> docs/BENCHMARKS.md.
bench: build
	bash scripts/bench.sh

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin runs demo
