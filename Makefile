# shoal — `make help` lists the targets.

GO        ?= go
BIN       := $(CURDIR)/bin
SHOAL     := $(BIN)/shoal
export PATH := $(BIN):$(PATH)

PROTOC_GEN_GO      := google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
PROTOC_GEN_GO_GRPC := google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
TOXIPROXY          := $(BIN)/toxiproxy/server
TOXIPROXY_PKG      := github.com/Shopify/toxiproxy/v2/cmd/server@v2.5.0
MINIO              := $(BIN)/minio/minio
MINIO_PKG          := github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: deps
deps: ## download the Go modules
	$(GO) mod download

.PHONY: build
build: deps ## build bin/shoal (static: a driver ships its own binary to a cluster's nodes)
	CGO_ENABLED=0 $(GO) build -o $(SHOAL) ./cmd/shoal

.PHONY: test
test: deps lint check-gen $(TOXIPROXY) minio-static ui-test-deps peers-deps ## run every test (lint, generated code, unit, integration with real processes, the UI in a browser)
	CGO_ENABLED=0 SHOAL_REQUIRE_DOCKER=1 $(GO) test -count=1 -timeout 18m ./...

DEMO := $(CURDIR)/demo

.PHONY: demo
demo: build ## the main job: PageRank of a generated 1M-edge graph on the embedded default; a worker is killed mid-job; top pages and what was redone printed
	@mkdir -p $(DEMO)
	@test -s $(DEMO)/graph.txt || $(SHOAL) gen graph --records 1000000 --output $(DEMO)/graph.txt
	@rm -rf $(DEMO)/ranks
	@rm -f $(DEMO)/events.jsonl
	$(SHOAL) run pagerank --input $(DEMO)/graph.txt --output $(DEMO)/ranks --iterations 20 --event-log $(DEMO)/events.jsonl --kill-worker-after 4s

.PHONY: image
image: ## build the container image shoal:dev: a static binary of ./cmd/shoal FROM scratch (deploy/Dockerfile; docs/cluster.md)
	scripts/image.sh shoal

.PHONY: image-minio
image-minio: minio-static ## build the image shoal-minio:dev: the pinned MinIO server, static, FROM scratch (deploy/minio.Dockerfile)
	scripts/image.sh minio $(MINIO)

.PHONY: bench-cluster
bench-cluster: ## PageRank of make demo's graph on three node containers (deploy/compose.yaml) against three local node services, 3 runs each (docs/measurements.md)
	scripts/cluster-cost.sh 3

.PHONY: deploy-secret
deploy-secret: build ## write deploy/secret/ (the cluster secret, the CA and the nodes' and driver's certificates) and deploy/.env for deploy/compose.yaml, unless they exist (git-ignored)
	SHOAL=$(SHOAL) scripts/deploy-secret.sh deploy

.PHONY: soak
soak: build ## 5 minutes of wide jobs on 3 nodes while random workers and nodes are killed; fails on any wrong answer or failed job
	$(SHOAL) demo soak --duration 5m

SOAK_DURATION ?= 10m

.PHONY: soak-cluster
soak-cluster: build ## SOAK_DURATION (10m) of wide jobs on 3 node containers while random workers are killed and hosts killed, paused or cut off; fails on any wrong answer, failed job or hang (docs/cluster.md)
	$(SHOAL) demo soak --hosts --duration $(SOAK_DURATION)

.PHONY: faults-cluster
faults-cluster: build ## the fault experiments (shoal demo faults) on 3 node containers, with a host killed, paused and cut off (docs/cluster.md)
	$(SHOAL) demo faults --hosts

STUDY ?= results/shuffle-study

.PHONY: bench
bench: build ## the shuffle study (bench/README.md): every mode over maps × reduces × data, then shoal's sort against GNU sort (results/shuffle-study; 1 h 20 min on a loaded 2-core machine), then recovery against the checkpoint interval (results/pagerank; a few minutes)
	$(SHOAL) bench shuffle --sweep --results $(STUDY) $(BENCH_FLAGS)
	$(SHOAL) bench pagerank --results results/pagerank

.PHONY: bench-ckpt
bench-ckpt: build $(TOXIPROXY) minio-static ## PageRank of make demo's graph checkpointing every iteration to MinIO behind toxiproxy (50 ms, bandwidth-limited): no checkpoint, through the tasks, through the nodes; medians of 3 (docs/measurements.md)
	$(GO) test ./jobs -run '^$$' -bench BenchmarkCheckpointOverhead -benchtime 1x -timeout 90m -v

.PHONY: bench-quick
bench-quick: build ## a shuffle study of a few seconds (a tiny grid) in results/tmp/quick
	$(SHOAL) bench shuffle --sweep --quick --results results/tmp/quick

.PHONY: bench-go
bench-go: build ## Go benchmarks of the writer and reader, then the shuffle benchmark once in each mode
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./shuffleservice/shuffle/ | tee bench-go.txt
	for m in sort bypass hash; do $(SHOAL) bench shuffle --mode $$m --maps 16 --reduces 256 --records 10000000 --json; done

.PHONY: bench-beam
bench-beam: build ## compare reduceByKey with the Apache Beam Go SDK's direct runner (downloads the SDK)
	$(SHOAL) bench reduce --records 10000000 --keys 1000000 --partitions 8 --json
	cd bench/beamcmp && $(GO) run . --records 10000000 --keys 1000000 --json

DUCKCMP := $(BIN)/duckcmp

.PHONY: bench-peers
bench-peers: build peers-deps $(DUCKCMP) ## shoal side by side with networkx (PageRank), GNU sort, DuckDB (the ecommerce group-by), one file (a directory of small files) and fewer tasks, 3 runs each, alternately (results/peers; bench/README.md; about 20 GB of disk)
	$(SHOAL) bench peers --results results/peers --duckcmp $(DUCKCMP) $(PEERS_FLAGS)

# The DuckDB side of make bench-peers: a module of its own (cgo, DuckDB's
# library from the module proxy), so shoal's module stays free of cgo.
.PHONY: duckcmp
duckcmp: $(DUCKCMP)
$(DUCKCMP): bench/duckcmp/main.go bench/duckcmp/go.mod bench/duckcmp/go.sum
	cd bench/duckcmp && CGO_ENABLED=1 $(GO) build -o $(DUCKCMP) .

# networkx, the PageRank peer of make bench-peers and of its test
# (bench/peers_test.go), from Debian's packages under /usr/bin/python3.
.PHONY: peers-deps
peers-deps:
	@/usr/bin/python3 -c 'import networkx, scipy' 2>/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-networkx python3-scipy)

.PHONY: fuzz
FUZZTIME ?= 30s
# FUZZ narrows `make fuzz` to targets whose name matches (a grep pattern);
# FUZZFLAGS adds go test flags, e.g. -parallel=1 to fuzz on one core.
FUZZ ?= .
FUZZFLAGS ?=
FUZZ_TARGETS := \
	FuzzNodeCall:./shuffleservice/ \
	FuzzEndpointConnect:./compute/ \
	FuzzDecodeIndex:./shuffleservice/shuffle/ \
	FuzzFrames:./shuffleservice/shuffle/ \
	FuzzDecodeBlock:./blockstore/ \
	FuzzDecodePartition:./checkpoint/ \
	FuzzDecodeReport:./client/ \
	FuzzDecode:./internal/codec/
fuzz: ## fuzz every target for FUZZTIME each (default 30s): each RPC of the node service and the driver endpoint in process, and the decoders (docs/security.md)
	@for t in $(FUZZ_TARGETS); do \
		echo "$${t%%:*}" | grep -q -e '$(FUZZ)' || continue; \
		echo "== $${t%%:*} ($(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$${t%%:*}$$" -fuzztime $(FUZZTIME) -timeout 0 $(FUZZFLAGS) "$${t#*:}" || exit 1; \
	done

$(TOXIPROXY):
	GOBIN=$(BIN)/toxiproxy $(GO) install $(TOXIPROXY_PKG)

# The checkpoint store's tests and `shoal bench checkpoint` run this MinIO
# server (a few minutes to build the first time); `make image-minio` puts it
# in an image FROM scratch, so it is built static (CGO_ENABLED=0).
$(MINIO):
	CGO_ENABLED=0 GOBIN=$(BIN)/minio $(GO) install $(MINIO_PKG)

# A MinIO built before its rule said CGO_ENABLED=0 is dynamically linked
# and cannot run in a scratch image: build it again. `make test` does this
# before the tests, which build the image (internal/dockertest) from
# several packages at once.
.PHONY: minio-static
minio-static: $(MINIO)
	@$(GO) version -m $(MINIO) | grep -q 'CGO_ENABLED=0' || { echo "$(MINIO) was built with cgo: building it again, static"; rm -f $(MINIO); $(MAKE) --no-print-directory $(MINIO); }

$(BIN)/protoc-gen-go:
	GOBIN=$(BIN) $(GO) install $(PROTOC_GEN_GO)
$(BIN)/protoc-gen-go-grpc:
	GOBIN=$(BIN) $(GO) install $(PROTOC_GEN_GO_GRPC)

.PHONY: protoc
protoc:
	@command -v protoc >/dev/null || (apt-get update -qq && apt-get install -y -qq protobuf-compiler)

# The UI's tests drive Debian's chromium (client/ui/browser_test.go) and
# run Debian's prometheus (client/ui/prometheus_test.go).
.PHONY: ui-test-deps
ui-test-deps:
	@command -v chromium >/dev/null && command -v prometheus >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium prometheus)

.PHONY: proto
proto: protoc $(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc ## regenerate the protobuf code
	scripts/genproto.sh .

.PHONY: check-gen
check-gen: protoc $(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc ## fail if regenerating the protobuf code changes anything
	scripts/genproto.sh --check

# internal/pkgstate fails on mutable package-level variables: its doc.go
# says which are allowed (errors, compiled regexps, tables never written).
.PHONY: lint
lint: ## the package-state check (no mutable package-level variables), go vet and gofmt
	$(GO) run ./internal/pkgstate ./...
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

.PHONY: clean
clean: ## remove build outputs
	rm -rf $(BIN)
