#!/usr/bin/env bash
# `make test` (and CI through .ci/run): PostgreSQL + Redis (scripts/services.sh), go vet,
# go test -race, the wscat recipe, the short chaos run (scripts/chaos.sh), then the browser tests
# if web/test/run.sh exists, then the TypeScript SDK's tests (clients/ts/test/run.sh). Stops at the
# first failure with a message naming the step; the exit status is non-zero on any failure.
#
# The Go tests get:
#   TEST_DATABASE_URL  a role that may create databases, on its maintenance database
#                      (internal/testdb creates and drops one database per test)
#   TEST_REDIS_URL     a Redis they may write to
# Knobs: those of scripts/services.sh; GO_TEST_FLAGS adds flags to go test (e.g. -run X -v);
# CHAOS_SKIP=1 leaves out the short chaos run.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
TASKSYNC_LOG_TAG="make test"
cd "$TASKSYNC_ROOT"

# step NAME CMD...: runs CMD; on failure says which step failed and exits with its status.
step() {
	local name=$1 rc=0
	shift
	log "==> $name"
	"$@" || rc=$?
	if ((rc != 0)); then
		log "FAILED: $name (exit status $rc)"
		exit "$rc"
	fi
}

need_go
need_ca_certs
need_cc

env_lines=$("$TASKSYNC_ROOT/scripts/services.sh" ensure) ||
	die "FAILED: PostgreSQL/Redis are not available (see the message above)"
eval "$env_lines"
export TEST_DATABASE_URL=$DATABASE_ADMIN_URL TEST_REDIS_URL=$REDIS_URL
log "TEST_DATABASE_URL=$(redact_url "$TEST_DATABASE_URL") TEST_REDIS_URL=$(redact_url "$TEST_REDIS_URL")"

step "go vet ./..." go vet ./...
# shellcheck disable=SC2086 # GO_TEST_FLAGS is a list of flags
step "go test -race ./..." go test -race -count=1 -timeout 12m ${GO_TEST_FLAGS:-} ./...

# The README's two-terminal recipe, run with the wscat version it names.
step "README wscat recipe (scripts/wscat-recipe.sh)" bash scripts/wscat-recipe.sh

# The short fault run and scenarios (about a minute and a half; docs/RELIABILITY.md): its own
# PostgreSQL and Redis, never the ones above. It fails on lost, duplicated, skipped or out-of-order
# changes, broken answers to poison frames and the scenarios' broken promises (memory under a
# snapshot flood, hello first, a locked table, slow bodies, batch reruns), never on timing.
# CHAOS_SKIP=1 leaves it out.
if [[ ${CHAOS_SKIP:-0} != 1 ]]; then
	step "chaos, short version (CHAOS_QUICK=1 scripts/chaos.sh)" env CHAOS_QUICK=1 bash scripts/chaos.sh
else
	log "CHAOS_SKIP=1: the short chaos run is skipped"
fi

# ------------------------------------------------------------------ browser tests hook
# When web/test/run.sh exists it is run here, after the Go tests, from the repo root, with
# TEST_DATABASE_URL, TEST_REDIS_URL and CHROMIUM_PATH in its environment. It owns its own
# npm install and server start-up. Debian's chromium is installed (as root) only in that case.
if [[ -f web/test/run.sh ]]; then
	if [[ ! -x /usr/bin/chromium ]]; then
		apt_install chromium ||
			die "FAILED: browser tests need Debian's chromium (/usr/bin/chromium), and $(why_cannot_install). Install it (sudo apt-get install chromium), then re-run."
	fi
	export CHROMIUM_PATH=/usr/bin/chromium
	step "browser tests (web/test/run.sh)" bash web/test/run.sh
else
	log "no web/test/run.sh: browser tests skipped (none exist yet)"
fi

# ------------------------------------------------------------------ the TypeScript SDK
# clients/ts/test/run.sh: generated types current, dist built from src, unit tests, integration
# tests against two real instances and a real Better Auth server, and a browser test importing
# /sdk/tasksync-client.js (a few minutes, npm ci included). Same environment as the browser tests.
if [[ ! -x /usr/bin/chromium ]]; then
	apt_install chromium ||
		die "FAILED: the SDK's browser test needs Debian's chromium (/usr/bin/chromium), and $(why_cannot_install). Install it (sudo apt-get install chromium), then re-run."
fi
export CHROMIUM_PATH=/usr/bin/chromium
step "SDK tests (clients/ts/test/run.sh)" bash clients/ts/test/run.sh

log "all checks passed"
