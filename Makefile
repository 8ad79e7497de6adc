# tidygate — build, test and lint. `make help` lists the targets.
#
# Integration tests get PostgreSQL through scripts/with-test-db.sh: a
# testcontainers container from the locally built image localhost/tidygate-pg:15
# (Docker is started and the image built when needed), or, outside CI when
# Docker is unusable, the local server on 127.0.0.1:5432; and Redis from
# containers of localhost/tidygate-redis:7, built from the host's redis-server.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO            ?= go
BIN           := bin
BINARY        := $(BIN)/tidygate
# The build before issue 16's work (2026-11-29), whose throughput make bench
# measures in the same run as today's: bin/tidygate-baseline, built once.
BASELINE_REV  ?= a588b61
BASELINE      := $(BIN)/tidygate-baseline
GOLANGCI_LINT_VERSION := v2.15.0
FUZZTIME      ?= 15s
BENCH         ?= .
BENCHTIME     ?= 1s
PKGS          ?= ./...
TESTFLAGS     ?=

# Tests never use Ryuk (its image cannot be pulled without a registry) and
# name mapped ports by IPv4 address. testcontainers wants exactly "true".
export TESTCONTAINERS_RYUK_DISABLED  ?= true
export TESTCONTAINERS_HOST_OVERRIDE  ?= 127.0.0.1

.PHONY: help
help: ## list the targets
	@awk 'BEGIN { FS = ":.*## " } /^[a-zA-Z_-]+:.*## / { printf "  make %-10s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

.PHONY: build
build: ## build bin/tidygate
	$(GO) build -o $(BINARY) ./cmd/app

.PHONY: run
run: build ## build and serve on 127.0.0.1:8080 against the local PostgreSQL, with the dev key
	$(BINARY) serve --dev-key

.PHONY: test
test: ## unit and integration tests (-race), PostgreSQL from containers (see scripts/with-test-db.sh); ends listing every skipped test and why
	$(GO) build -o $(BIN)/testsummary ./cmd/testsummary
	scripts/with-test-db.sh $(GO) test -json -race -tags integration -count=1 $(TESTFLAGS) $(PKGS) | $(BIN)/testsummary

.PHONY: test-unit
test-unit: ## unit tests only (-race), no database; ends listing every skipped test and why
	$(GO) build -o $(BIN)/testsummary ./cmd/testsummary
	$(GO) test -json -race $(TESTFLAGS) $(PKGS) | $(BIN)/testsummary

.PHONY: lint
lint: ## golangci-lint (installs it into bin/ if missing) and the layering check of ARCHITECTURE.md's table
	lint=$$(scripts/golangci-lint.sh $(GOLANGCI_LINT_VERSION)); "$$lint" run $(PKGS) && \
	"$$lint" run --build-tags integration,faultpoint ./cmd/app/... # the fault points' build: cmd/app/faultpoint.go
	$(GO) test -count=1 -run '^TestRepositoryFollowsTheLayerTable$$' ./internal/layers

.PHONY: e2e
e2e: ## coding agents through tidygate: installs Claude Code and Codex (pinned, npm) into e2e/node_modules and runs them against tidygate with the mock (needs Node 20+, PostgreSQL on 127.0.0.1:5432)
	timeout 15m e2e/run.sh

.PHONY: fuzz
fuzz: ## run every Fuzz target for FUZZTIME (default 15s) each
	@targets=$$($(GO) test -list '^Fuzz' $(PKGS) | awk '/^Fuzz/ { names = names " " $$1 } /^ok / { if (names != "") print $$2 names; names = "" }'); \
	if [ -z "$$targets" ]; then echo "no Fuzz targets"; exit 0; fi; \
	while read -r pkg names; do \
		for name in $$names; do \
			echo "==> $$pkg $$name ($(FUZZTIME))"; \
			log=$$(mktemp); \
			if ! $(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 200x "$$pkg" 2>&1 | tee "$$log"; then \
				if grep -q 'context deadline exceeded' "$$log" && ! grep -q 'Failing input written' "$$log"; then \
					echo "==> $$name: the fuzzing engine missed its own deadline (no failing input); once more"; \
					$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 200x "$$pkg"; \
				else rm -f "$$log"; exit 1; fi; \
			fi; \
			rm -f "$$log"; \
		done; \
	done <<<"$$targets"

.PHONY: bench
bench: build ## the benchmark harness (cmd/bench, ~10 min): latency, throughput (beside the build of BASELINE_REV), MLflow writer, pools, memory; rewrites docs/BENCHMARKS.md
	[ -x $(BASELINE) ] || scripts/bench/build-baseline.sh $(BASELINE_REV) $(BASELINE) || true
	$(GO) run ./cmd/bench -tidygate $(BINARY) $$([ -x $(BASELINE) ] && echo -baseline-tidygate $(BASELINE)) -docs docs $(BENCHFLAGS)

.PHONY: bench-go
bench-go: ## Go benchmarks, integration ones included (BENCH=regexp, BENCHTIME=1s)
	scripts/with-test-db.sh $(GO) test -tags integration -run '^$$' -bench '$(BENCH)' -benchtime $(BENCHTIME) -benchmem -count=1 $(PKGS)

.PHONY: soak
soak: build ## steady load while the local database comes and goes (cmd/soak; SOAKFLAGS="-duration 3m …")
	$(GO) run ./cmd/soak -binary $(BINARY) $(SOAKFLAGS)

.PHONY: image
image: ## build the container image localhost/tidygate:latest (FROM scratch, no registry; IMAGE=name:tag)
	scripts/start-docker.sh
	scripts/image/build.sh

.PHONY: ci
ci: ## what CI runs (as root): packages, PostgreSQL, Docker, image, lint, test
	bash .ci/run

.PHONY: sweep
sweep: ## remove every testcontainers container on this engine (also other runs')
	@ids=$$(docker ps -aq --filter label=org.testcontainers=true); \
	if [ -n "$$ids" ]; then docker rm -f $$ids >/dev/null; echo "removed: $$ids"; else echo "no test containers"; fi

.PHONY: pg-image
pg-image: ## build localhost/tidygate-pg:15 (starts Docker if needed; no-op when up to date)
	scripts/start-docker.sh
	scripts/pg-image/build.sh

.PHONY: redis-image
redis-image: ## build localhost/tidygate-redis:7 from the host's redis-server (starts Docker if needed; no-op when up to date)
	scripts/start-docker.sh
	scripts/redis-image/build.sh

.PHONY: clean
clean: ## remove build outputs and the test cache
	rm -rf $(BIN)
	$(GO) clean -testcache
