#!/usr/bin/env bash
# The board's browser benchmark (web/test/bench-board.mjs): first render and
# REST-change-to-row time at 50 / 600 / 5,000 tasks, in Chromium, with
# performance marks. Figures, not a test: nothing fails on a slow run.
# docs/BENCHMARKS.md has the figures and how they were taken.
#
#   eval "$(scripts/services.sh ensure)" && bash web/test/bench.sh
#
# BENCH_SERVER_BIN=path runs another build's server (and so its board), for a
# before/after comparison: e.g. `git worktree add /tmp/before main &&
# (cd /tmp/before && go build -o /tmp/server-before ./cmd/server)`. The
# database is migrated by this checkout's build; use builds with the same
# migrations. BENCH_SIZES (default "50 600 5000") and BENCH_CHANGES
# (default 15) change the run.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"
# shellcheck disable=SC2034 # read by log/die in scripts/lib.sh
TASKSYNC_LOG_TAG="web bench"
cd "$TASKSYNC_ROOT"
need_go
(cd web/test && npm ci --no-audit --no-fund --loglevel=error) >&2 || die "npm ci in web/test failed"

# shellcheck source=scripts/test-instances.sh
source "$TASKSYNC_ROOT/scripts/test-instances.sh"
test_instances bench # a fresh database, the server built and migrated; cleaned up on exit
if [[ -n ${BENCH_SERVER_BIN:-} ]]; then
	export TASKSYNC_SERVER_BIN=$BENCH_SERVER_BIN
fi
export TASKSYNC_SCREENSHOTS=$WORK
export CHROMIUM_PATH=${CHROMIUM_PATH:-/usr/bin/chromium}
node web/test/bench-board.mjs
