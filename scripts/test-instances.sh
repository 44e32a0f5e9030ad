# shellcheck shell=bash
# Sourced by the Node test suites that run real server instances (web/test/run.sh,
# clients/ts/test/run.sh), after scripts/lib.sh: test_instances NAME finds PostgreSQL and Redis
# (TEST_DATABASE_URL or DATABASE_ADMIN_URL, TEST_REDIS_URL or REDIS_URL, else scripts/services.sh),
# makes a scratch folder and a fresh database tasksync_NAME_*, builds the server into it and
# migrates, and exports what the suites' harness.mjs reads (TASKSYNC_SERVER_BIN,
# TASKSYNC_TEST_DATABASE_URL, TASKSYNC_TEST_REDIS_URL, a unique TASKSYNC_TEST_REDIS_PREFIX,
# TASKSYNC_TEST_SECRET, TASKSYNC_TEST_PIDS, TASKSYNC_TEST_LOGS). It also sets WORK (the scratch
# folder) for the caller. On exit, whatever happened, it kills the servers the tests left running
# (their pid files in $WORK/pids), drops the database, shows the servers' last log lines on a
# failure and removes the scratch folder.

test_instances() {
	local name=$1
	ADMIN_URL=${TEST_DATABASE_URL:-${DATABASE_ADMIN_URL:-}}
	RDS_URL=${TEST_REDIS_URL:-${REDIS_URL:-}}
	if [[ -z $ADMIN_URL || -z $RDS_URL ]]; then
		local env_lines
		env_lines=$("$TASKSYNC_ROOT/scripts/services.sh" ensure) || die "PostgreSQL/Redis are not available (see above)"
		eval "$env_lines"
		ADMIN_URL=${ADMIN_URL:-$DATABASE_ADMIN_URL}
		RDS_URL=${RDS_URL:-$REDIS_URL}
	fi
	command -v psql >/dev/null 2>&1 || apt_install postgresql-client || die "psql is missing, and $(why_cannot_install)"

	WORK=$(mktemp -d "${TMPDIR:-/tmp}/tasksync-$name.XXXXXX")
	DB_NAME="tasksync_${name}_$(date +%s)_$$"
	DB_CREATED=0
	trap _test_instances_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM

	log "building the server"
	(cd "$TASKSYNC_ROOT" && go build -o "$WORK/server" ./cmd/server) || die "go build ./cmd/server failed"

	log "creating database $DB_NAME"
	psql -X -w -q -v ON_ERROR_STOP=1 -d "$ADMIN_URL" -c "CREATE DATABASE $DB_NAME" </dev/null >&2 ||
		die "CREATE DATABASE $DB_NAME failed (TEST_DATABASE_URL / DATABASE_ADMIN_URL must be a role that may create databases)"
	DB_CREATED=1
	local db_url secret
	db_url=$(url_with_db "$ADMIN_URL" "$DB_NAME")
	secret=$(head -c 32 /dev/urandom | base64 | tr -d '\n=+/')
	DATABASE_URL=$db_url AUTH_JWT_SECRET=$secret "$WORK/server" migrate >&2 || die "migrations failed"
	mkdir -p "$WORK/pids" "$WORK/logs"

	export TASKSYNC_SERVER_BIN=$WORK/server
	export TASKSYNC_TEST_DATABASE_URL=$db_url
	export TASKSYNC_TEST_REDIS_URL=$RDS_URL
	export TASKSYNC_TEST_REDIS_PREFIX="tasksync-$name-$DB_NAME"
	export TASKSYNC_TEST_SECRET=$secret
	export TASKSYNC_TEST_PIDS=$WORK/pids
	export TASKSYNC_TEST_LOGS=$WORK/logs
}

_test_instances_cleanup() {
	local rc=$? f pid
	# Servers the tests left running (a crash, an interrupt).
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
