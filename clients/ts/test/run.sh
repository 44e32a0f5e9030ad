#!/usr/bin/env bash
# Tests of the @tasksync/client SDK (clients/ts), from the checks that need nothing to the ones
# against real servers:
#   1. the generated frame types are current (node scripts/gen-types.mjs --check), if it exists;
#   2. dist/ is the build of src/ (npm run check:dist), if the package has that script;
#   3. unit tests (node --test test/unit/);
#   4. integration tests (test/integration/*.test.mjs): the SDK in Node (with `ws`) against two
#      real server instances on one fresh PostgreSQL database and one Redis (a unique
#      REDIS_PREFIX), and a real Better Auth server (better-auth + better-sqlite3) for tokens;
#   5. browser tests (test/browser/*.test.mjs): Debian's Chromium driven by playwright-core,
#      importing the SDK from the server's /sdk/tasksync-client.js.
#
# scripts/test.sh (make test, CI) runs this after the web tests. Alone:
#   eval "$(scripts/services.sh ensure)" && bash clients/ts/test/run.sh
#
# Environment:
#   TEST_DATABASE_URL or DATABASE_ADMIN_URL  a role that may create databases (else services.sh is asked)
#   TEST_REDIS_URL or REDIS_URL              a Redis the tests may write to
#   CHROMIUM_PATH                            default /usr/bin/chromium (installed with apt-get as root if missing)
#   SDK_TEST_FLAGS                           extra flags for node --test (e.g. --test-name-pattern=failover)
#   SDK_TEST_ONLY                            unit, integration or browser: run only that part (and 1-2)
# The tests start, stop and kill the server instances themselves; this script builds the binary,
# makes and drops the database, and kills any server still running when it exits, whatever happened.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../../scripts/lib.sh"
# shellcheck disable=SC2034 # read by log/die in scripts/lib.sh
TASKSYNC_LOG_TAG="sdk tests"
cd "$TASKSYNC_ROOT"
need_go
TS=$TASKSYNC_ROOT/clients/ts
ONLY=${SDK_TEST_ONLY:-}

# ---------------------------------------------------------------- tools

CHROMIUM_PATH=${CHROMIUM_PATH:-/usr/bin/chromium}
if [[ (-z $ONLY || $ONLY == browser) && ! -x $CHROMIUM_PATH ]]; then
	apt_install chromium ||
		die "the browser tests need Debian's chromium at $CHROMIUM_PATH, and $(why_cannot_install). Install it (sudo apt-get install chromium) or set CHROMIUM_PATH."
	[[ -x $CHROMIUM_PATH ]] || die "chromium installed, but $CHROMIUM_PATH is still missing; set CHROMIUM_PATH"
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	apt_install nodejs npm || die "the SDK tests need Node.js 20+ and npm, and $(why_cannot_install)"
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
((node_major >= 20)) || die "the SDK tests need Node.js 20 or newer; this is $(node --version)"

# A node_modules that is a symlink is a shared install (git worktrees): npm ci would empty its target.
if [[ -L $TS/node_modules ]]; then
	log "clients/ts/node_modules is a symlink: npm ci skipped (using $(readlink "$TS/node_modules"))"
else
	log "npm ci (clients/ts)"
	(cd "$TS" && npm ci --no-audit --no-fund --loglevel=error) >&2 || die "npm ci in clients/ts failed"
fi

# ---------------------------------------------------------------- checks that need no server

cd "$TS"
if [[ -f scripts/gen-types.mjs ]]; then
	log "generated frame types are current (node scripts/gen-types.mjs --check)"
	node scripts/gen-types.mjs --check || die "src/protocol.gen.ts is not what docs/schemas generate: run node scripts/gen-types.mjs in clients/ts and commit"
fi
if node -e 'process.exit(require("./package.json").scripts?.["check:dist"] ? 0 : 1)'; then
	log "dist/ is the build of src/ (npm run check:dist)"
	npm run --silent check:dist || die "clients/ts/dist is not the build of src: run npm run build in clients/ts and commit dist/"
fi
if [[ (-z $ONLY || $ONLY == unit) && -d test/unit ]]; then
	log "unit tests (node --test test/unit/)"
	# shellcheck disable=SC2086 # SDK_TEST_FLAGS is a list of flags
	node --test ${SDK_TEST_FLAGS:-} test/unit/ || die "unit tests failed"
fi
[[ $ONLY == unit ]] && exit 0
cd "$TASKSYNC_ROOT"

# ---------------------------------------------------------------- services

# shellcheck source=scripts/test-instances.sh
source "$TASKSYNC_ROOT/scripts/test-instances.sh"
test_instances sdk # a fresh database, the server built and migrated; cleaned up on exit
export CHROMIUM_PATH

cd "$TS"
shopt -s nullglob
if [[ -z $ONLY || $ONLY == integration ]]; then
	files=(test/integration/*.test.mjs)
	if ((${#files[@]})); then
		log "integration tests (two server instances, Better Auth)"
		# shellcheck disable=SC2086 # SDK_TEST_FLAGS is a list of flags
		node --test --test-concurrency=1 --test-timeout=120000 ${SDK_TEST_FLAGS:-} "${files[@]}"
	fi
fi
if [[ -z $ONLY || $ONLY == browser ]]; then
	files=(test/browser/*.test.mjs)
	if ((${#files[@]})); then
		log "browser tests (Chromium, /sdk/tasksync-client.js)"
		# shellcheck disable=SC2086 # SDK_TEST_FLAGS is a list of flags
		node --test --test-concurrency=1 --test-timeout=120000 ${SDK_TEST_FLAGS:-} "${files[@]}"
	fi
fi
log "SDK tests passed"
