# tasksync: the two commands are `make dev` and `make test`; `make` alone lists the rest.
# PostgreSQL and Redis come from scripts/services.sh (reused when running, else started
# locally, installed with apt-get as root when missing); its knobs are documented at its top.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# Go from PATH, else the usual /usr/local/go.
GO ?= $(or $(shell command -v go 2>/dev/null),/usr/local/go/bin/go)

.PHONY: help dev test services services-stop build fmt vet bench bench-board scale-demo chaos token screenshots

help: ## list the targets
	@echo "tasksync — make targets:"
	@grep -E '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | \
		awk -F '\t' '{ printf "  make %-15s %s\n", $$1, $$2 }'

dev: ## run the server locally (services, database, migrations, a 24 h token, then serve)
	@scripts/dev.sh

test: ## go vet + go test -race against real PostgreSQL/Redis, the short chaos run (+ browser tests when present)
	@scripts/test.sh

screenshots: ## re-take docs/screenshots/*.png with the browser tests
	@env_lines=$$(scripts/services.sh ensure); eval "$$env_lines"; \
	UPDATE_SCREENSHOTS=1 bash web/test/run.sh

token: ## print a dev token signed with .dev/secret: make token USER_ID=alice TTL=1h
	@test -s .dev/secret || { echo "no .dev/secret yet: run 'make dev' once" >&2; exit 1; }
	@AUTH_JWT_SECRET="$$(cat .dev/secret)" $(GO) run ./cmd/server token "$(or $(USER_ID),dev-user)" --ttl "$(or $(TTL),1h)"

services: ## ensure PostgreSQL/Redis; prints export lines: eval "$(make -s services)"
	@scripts/services.sh ensure

services-stop: ## stop the PostgreSQL/Redis that `make dev`/`make test` started for this checkout
	@scripts/services.sh stop

build: ## compile every package, and the server into .dev/bin/server
	$(GO) build ./...
	@if [ -d cmd/server ]; then echo "$(GO) build -o .dev/bin/server ./cmd/server"; \
		$(GO) build -o .dev/bin/server ./cmd/server; fi

fmt: ## gofmt every Go file in place
	$(GO) fmt ./...

vet: ## go vet ./...
	$(GO) vet ./...

bench: ## load scenarios vs their baselines + Go micro-benchmarks (~10 min; BENCH_QUICK=1: ~2 min); docs/BENCHMARKS.md
	@scripts/bench.sh

bench-board: ## the browser board at 50 / 600 / 5,000 tasks: first render, change to row (~2 min; BENCH_SERVER_BIN=another build); docs/BENCHMARKS.md
	@env_lines=$$(scripts/services.sh ensure); eval "$$env_lines"; \
	bash web/test/bench.sh

scale-demo: ## three instances behind Debian's nginx (no sticky sessions), kill -9 one under load: nothing lost (~1 min); docs/SCALING.md
	@scripts/nginx-run.sh

chaos: ## faults under load (kill -9, Postgres restarts, Redis kill, SIGTERM, poison), then issue 9's attacks as scenarios (~7 min; CHAOS_QUICK=1: ~1.5 min); docs/RELIABILITY.md
	@scripts/chaos.sh
