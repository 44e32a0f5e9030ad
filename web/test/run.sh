#!/usr/bin/env bash
# Browser tests of the web client (web/test/*.test.mjs): Debian's Chromium driven by playwright-core
# through node's built-in test runner, against two real server instances on one fresh PostgreSQL
# database and one Redis (a unique REDIS_PREFIX), as a deployment runs them.
#
# scripts/test.sh (make test, CI) runs this after the Go tests. Alone:
#   eval "$(scripts/services.sh ensure)" && bash web/test/run.sh
#
# Environment:
#   TEST_DATABASE_URL or DATABASE_ADMIN_URL  a role that may create databases (else services.sh is asked)
#   TEST_REDIS_URL or REDIS_URL              a Redis the tests may write to
#   CHROMIUM_PATH                            default /usr/bin/chromium (installed with apt-get as root if missing)
#   WEB_TEST_FLAGS                           extra flags for node --test (e.g. --test-name-pattern=chat)
# The tests start, stop and restart the server instances themselves (one test restarts an instance
# under an open page); this script builds the binary, makes and drops the database, and kills any
# server still running when it exits, whatever happened.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"
# shellcheck disable=SC2034 # read by log/die in scripts/lib.sh
TASKSYNC_LOG_TAG="web tests"
cd "$TASKSYNC_ROOT"
need_go

# ---------------------------------------------------------------- tools

CHROMIUM_PATH=${CHROMIUM_PATH:-/usr/bin/chromium}
if [[ ! -x $CHROMIUM_PATH ]]; then
	apt_install chromium ||
		die "the browser tests need Debian's chromium at $CHROMIUM_PATH, and $(why_cannot_install). Install it (sudo apt-get install chromium) or set CHROMIUM_PATH."
	[[ -x $CHROMIUM_PATH ]] || die "chromium installed, but $CHROMIUM_PATH is still missing; set CHROMIUM_PATH"
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	apt_install nodejs npm || die "the browser tests need Node.js 20+ and npm, and $(why_cannot_install)"
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
((node_major >= 20)) || die "the browser tests need Node.js 20 or newer (playwright-core requires it); this is $(node --version)"

log "npm ci (web/test)"
(cd web/test && npm ci --no-audit --no-fund --loglevel=error) >&2 || die "npm ci in web/test failed"

# ---------------------------------------------------------------- services

# shellcheck source=scripts/test-instances.sh
source "$TASKSYNC_ROOT/scripts/test-instances.sh"
test_instances web # a fresh database, the server built and migrated; cleaned up on exit

# Screenshots go to the run's scratch folder, so that a test run leaves the
# checkout clean; UPDATE_SCREENSHOTS=1 (make screenshots) writes the ones
# committed under docs/screenshots and shown in the README.
SHOTS=$WORK/screenshots
[[ ${UPDATE_SCREENSHOTS:-0} == 1 ]] && SHOTS=$TASKSYNC_ROOT/docs/screenshots
mkdir -p "$SHOTS"
export TASKSYNC_SCREENSHOTS=$SHOTS
export CHROMIUM_PATH

log "running the browser tests"
# shellcheck disable=SC2086 # WEB_TEST_FLAGS is a list of flags
node --test --test-concurrency=1 --test-timeout=180000 ${WEB_TEST_FLAGS:-} web/test/*.test.mjs
