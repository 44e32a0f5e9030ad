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
command -v psql >/dev/null 2>&1 || apt_install postgresql-client || die "psql is missing, and $(why_cannot_install)"

log "npm ci (web/test)"
(cd web/test && npm ci --no-audit --no-fund --loglevel=error) >&2 || die "npm ci in web/test failed"

# ---------------------------------------------------------------- services

ADMIN_URL=${TEST_DATABASE_URL:-${DATABASE_ADMIN_URL:-}}
RDS_URL=${TEST_REDIS_URL:-${REDIS_URL:-}}
if [[ -z $ADMIN_URL || -z $RDS_URL ]]; then
	env_lines=$("$TASKSYNC_ROOT/scripts/services.sh" ensure) || die "PostgreSQL/Redis are not available (see above)"
	eval "$env_lines"
	ADMIN_URL=${ADMIN_URL:-$DATABASE_ADMIN_URL}
	RDS_URL=${RDS_URL:-$REDIS_URL}
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tasksync-web.XXXXXX")
DB_NAME="tasksync_web_$(date +%s)_$$"
DB_CREATED=0

cleanup() {
	local rc=$?
	# Servers the tests left running (a crash, an interrupt): their pid files are in $WORK/pids.
	if [[ -d $WORK/pids ]]; then
		for f in "$WORK"/pids/*.pid; do
			[[ -e $f ]] || continue
			pid=$(<"$f")
			if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
				kill -TERM "$pid" 2>/dev/null || true
				for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
				kill -KILL "$pid" 2>/dev/null || true
			fi
		done
	fi
	if ((DB_CREATED)); then
		psql -X -w -q -d "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" </dev/null >/dev/null 2>&1 ||
			log "warning: could not drop database $DB_NAME"
	fi
	if ((rc != 0)) && [[ -d $WORK/logs ]]; then
		for f in "$WORK"/logs/*.log; do
			[[ -e $f ]] || continue
			log "---- last lines of $(basename "$f")"
			tail -n 25 "$f" >&2
		done
	fi
	rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "building the server"
go build -o "$WORK/server" ./cmd/server

log "creating database $DB_NAME"
psql -X -w -q -v ON_ERROR_STOP=1 -d "$ADMIN_URL" -c "CREATE DATABASE $DB_NAME" </dev/null >&2 ||
	die "CREATE DATABASE $DB_NAME failed (TEST_DATABASE_URL / DATABASE_ADMIN_URL must be a role that may create databases)"
DB_CREATED=1
DB_URL=$(url_with_db "$ADMIN_URL" "$DB_NAME")

SECRET=$(head -c 32 /dev/urandom | base64 | tr -d '\n=+/')
DATABASE_URL=$DB_URL AUTH_JWT_SECRET=$SECRET "$WORK/server" migrate >&2 || die "migrations failed"

# Screenshots go to the run's scratch folder, so that a test run leaves the
# checkout clean; UPDATE_SCREENSHOTS=1 (make screenshots) writes the ones
# committed under docs/screenshots and shown in the README.
SHOTS=$WORK/screenshots
[[ ${UPDATE_SCREENSHOTS:-0} == 1 ]] && SHOTS=$TASKSYNC_ROOT/docs/screenshots
mkdir -p "$WORK/pids" "$WORK/logs" "$SHOTS"

export TASKSYNC_SERVER_BIN=$WORK/server
export TASKSYNC_TEST_DATABASE_URL=$DB_URL
export TASKSYNC_TEST_REDIS_URL=$RDS_URL
export TASKSYNC_TEST_REDIS_PREFIX="tasksync-web-$DB_NAME"
export TASKSYNC_TEST_SECRET=$SECRET
export TASKSYNC_TEST_PIDS=$WORK/pids
export TASKSYNC_TEST_LOGS=$WORK/logs
export TASKSYNC_SCREENSHOTS=$SHOTS
export CHROMIUM_PATH

log "running the browser tests"
# shellcheck disable=SC2086 # WEB_TEST_FLAGS is a list of flags
node --test --test-concurrency=1 --test-timeout=180000 ${WEB_TEST_FLAGS:-} web/test/*.test.mjs
