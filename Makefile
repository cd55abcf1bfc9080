# Sendguard — build, generate, lint and test.
#
#   make run     the embedded stack (broker + all services + ClickHouse when reachable)
#   make test    everything CI runs: installs what is missing, starts ClickHouse
#                on loopback, vet, buf lint/format, generated-code freshness,
#                go test -race over every module (integration tests included),
#                short fuzz runs, docker compose config when docker is present.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := build

BIN        := $(CURDIR)/.tmp/bin
BUF        := $(BIN)/buf
BUF_VERSION := v1.75.0
export PATH := $(BIN):$(PATH)
MODULES     = $(shell go list -m -f '{{.Dir}}')
PACKAGES    = $(shell go list -m -f '{{.Path}}/...')
FUZZTIME   ?= 5s
export SENDGUARD_CLICKHOUSE ?= 127.0.0.1:9000
# apt_install installs Debian packages, refreshing the package lists once if
# the first attempt fails (a fresh machine may have none).
apt_install = DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(1) >/dev/null 2>&1 || \
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(1) >/dev/null; }

.PHONY: build run test tools generate check-generate lint buf-lint breaking vet clickhouse \
        unit fuzz fault-test compose-config gowork-off postfix tidy clean

build:
	go build $(PACKAGES)

run:
	go run ./services/devstack $(ARGS)

## tools: buf and the protoc plugins, pinned (tools/go.mod), into .tmp/bin.
tools: $(BUF) $(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc

$(BUF):
	@mkdir -p $(BIN)
	GOBIN=$(BIN) GOWORK=off go install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)

$(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc: tools/go.mod
	@mkdir -p $(BIN)
	cd tools && GOBIN=$(BIN) GOWORK=off go install google.golang.org/protobuf/cmd/protoc-gen-go google.golang.org/grpc/cmd/protoc-gen-go-grpc

generate: tools
	$(BUF) generate

## check-generate fails when the committed generated code is stale.
check-generate: generate
	@if [ -n "$$(git status --porcelain -- proto/gen)" ]; then \
	  echo "generated code is stale: run 'make generate' and commit"; git status --porcelain -- proto/gen; exit 1; fi

buf-lint: tools
	$(BUF) lint
	$(BUF) format -d --exit-code

## breaking compares proto/ against main (a no-op on main itself).
breaking: tools
	@if git rev-parse --verify -q main >/dev/null && git cat-file -e main:proto/sendguard 2>/dev/null; then \
	  $(BUF) breaking --against '.git#branch=main'; else echo "breaking: no main branch with protos yet"; fi

vet:
	go vet $(PACKAGES)
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$unformatted" ]; then echo "gofmt:"; echo "$$unformatted"; exit 1; fi

lint: vet buf-lint

## clickhouse installs (Debian's clickhouse-server) and starts it on loopback.
clickhouse:
	bash scripts/clickhouse.sh

## postfix installs Debian's postfix (no configuration, not started) for the
## real-Postfix policy test; the test runs a private instance on loopback.
postfix:
	bash scripts/postfix.sh

unit:
	go test -race -count=1 -timeout 15m $(PACKAGES)

## fault-test runs the long fault tests (services/devstack TestFaults with
## SENDGUARD_FAULT_LONG=1, about 10 minutes): the five services and the broker
## as processes and a private ClickHouse on free ports; under steady load each
## service is killed with SIGKILL and restarted, the broker killed and
## restarted on its data dir, ClickHouse stopped for a minute; after each,
## nothing acknowledged is lost or counted twice, the backlog drains and the
## enforcing decisions equal a replay's. `make test` runs the short version.
fault-test:
	SENDGUARD_FAULT_LONG=1 go test -count=1 -timeout 60m -run '^TestFaults$$' -v ./services/devstack/

## fuzz runs every fuzz target briefly (FUZZTIME each); longer runs: FUZZTIME=10m make fuzz.
## Minimizing a new interesting input is bounded (-fuzzminimizetime): by
## default it may take 60 s, and when -fuzztime ends during it Go reports
## "context deadline exceeded" without any crasher. Only that report, with no
## new crasher written under testdata/fuzz, is retried once; a real failure
## fails.
fuzz:
	@for dir in $$(grep -rl --include='*_test.go' '^func Fuzz' pkg services | xargs -n1 dirname | sort -u); do \
	  for target in $$(grep -h '^func Fuzz' $$dir/*_test.go | sed 's/func \(Fuzz[A-Za-z0-9_]*\).*/\1/'); do \
	    echo "fuzz $$dir $$target"; \
	    for attempt in 1 2; do \
	      out=$$(cd $$dir && go test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 1s . 2>&1) && { echo "$$out" | tail -1; break; }; \
	      if [ $$attempt = 1 ] && echo "$$out" | grep -q '^    context deadline exceeded$$' && [ -z "$$(git status --porcelain -- $$dir/testdata/fuzz)" ]; then \
	        echo "fuzz $$dir $$target: toolchain deadline report without a crasher, retrying once"; continue; fi; \
	      echo "$$out"; exit 1; \
	    done; \
	  done; \
	done

## gowork-off builds every service module alone (GOWORK=off), as Docker
## builds do: each go.mod must require and replace the in-repo modules.
gowork-off:
	@for d in services/*/; do (cd $$d && GOWORK=off go build -o /dev/null ./...) || { echo "GOWORK=off build failed in $$d"; exit 1; }; done
	@echo "GOWORK=off builds: ok"

## compose-config validates docker-compose.yml (docker compose v2, else
## Debian's docker-compose, installed when a docker client is present) and
## the deployment manifests (deployments/validate.sh). Skipped only when
## there is no docker client at all.
compose-config:
	@if command -v docker >/dev/null 2>&1; then \
	  if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null 2>&1; then \
	    $(call apt_install,docker-compose); fi; \
	  { python3 -c 'import yaml' 2>/dev/null || /usr/bin/python3 -c 'import yaml' 2>/dev/null; } || $(call apt_install,python3-yaml); \
	  bash deployments/validate.sh; \
	else echo "compose-config: no docker client, skipped"; fi

test: tools clickhouse postfix lint check-generate breaking gowork-off compose-config unit fuzz

tidy:
	go work sync
	@for m in $(MODULES) $(CURDIR)/tools; do (cd $$m && GOWORK=off go mod tidy); done

clean:
	rm -rf .tmp
