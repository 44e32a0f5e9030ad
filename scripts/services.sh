#!/usr/bin/env bash
# PostgreSQL and Redis for `make dev` and `make test`, on this machine or a fresh Debian 12.
#
#   eval "$(scripts/services.sh ensure)"  # prints: export DATABASE_ADMIN_URL=... / export REDIS_URL=...
#   scripts/services.sh stop              # stops only what this script started for this checkout
#   scripts/services.sh status            # says what ensure would use, starts nothing
#   scripts/services.sh destroy           # stop, then delete this checkout's local data
#
# stdout carries only the export lines; every diagnostic goes to stderr. Exit status is
# non-zero, after one message saying why, when a service cannot be provided.
#
# How each service is found (first that works wins; "works" means a real connection):
#   PostgreSQL
#     1. DATABASE_ADMIN_URL, when set: used as is if `psql` connects without a password
#        prompt and the role may CREATE DATABASE; an error otherwise (never silently replaced).
#     2. The server at TASKSYNC_PG_PROBE (default 127.0.0.1:5432), if `pg_isready` answers and
#        `psql` connects there as user postgres, without a password, as a superuser (true on
#        machines whose cluster uses trust auth; false after a plain `apt-get install
#        postgresql`, whose cluster wants peer/password auth).
#     3. A project-local cluster: trust auth, listening on 127.0.0.1:TASKSYNC_PG_PORT (55432)
#        only, superuser postgres, data in TASKSYNC_SERVICES_DIR/pg/data. Reused when running,
#        else created once (initdb) and started (pg_ctl). As root it runs as the `postgres`
#        system user, since initdb and pg_ctl refuse root. If another checkout's cluster already
#        serves that port with trust auth, it is reused (and left alone by `stop`).
#   Redis
#     1. REDIS_URL, when set: used as is if `redis-cli -u URL ping` answers PONG; else an error.
#     2. The server at TASKSYNC_REDIS_PROBE (default 127.0.0.1:6379), if `redis-cli ping` → PONG.
#     3. A project-local redis-server on 127.0.0.1:TASKSYNC_REDIS_PORT (56379), nothing saved to
#        disk, pid/log files in TASKSYNC_SERVICES_DIR/redis. Reused when running.
#   Missing programs (psql, pg_isready, initdb/pg_ctl, redis-cli, redis-server) are installed
#   with apt-get (Debian packages postgresql, redis-server) only when running as root and only
#   when they are needed; otherwise the script stops and says what to install.
#
# Environment knobs:
#   DATABASE_ADMIN_URL     use this PostgreSQL (postgres://USER[:PASS]@HOST:PORT/postgres...)
#   REDIS_URL              use this Redis (redis://[:PASS@]HOST:PORT[/DB])
#   TASKSYNC_PG_PROBE      HOST:PORT of an existing PostgreSQL to try first, or "off"
#                          (default 127.0.0.1:5432)
#   TASKSYNC_REDIS_PROBE   HOST:PORT of an existing Redis to try first, or "off"
#                          (default 127.0.0.1:6379)
#   TASKSYNC_PG_PORT       port of the project-local PostgreSQL (default 55432); a cluster that
#                          is already running keeps the port it was started with
#   TASKSYNC_REDIS_PORT    port of the project-local Redis (default 56379); same rule
#   TASKSYNC_SERVICES_DIR  state of the local instances (default
#                          /var/tmp/tasksync-<uid>-<hash of the repo path>; must be reachable
#                          by the postgres user when running as root)
#   TASKSYNC_PG_BINDIR     directory with initdb/pg_ctl (default: the version that made the data
#                          directory, else the newest /usr/lib/postgresql/*/bin)
#   TASKSYNC_NO_INSTALL=1  never run apt-get, even as root
#   TASKSYNC_START_TIMEOUT seconds to wait for a started server to accept connections (60)
#
# Examples:
#   TASKSYNC_PG_PROBE=off TASKSYNC_REDIS_PROBE=off scripts/services.sh ensure  # force local ones
#   scripts/services.sh stop
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
TASKSYNC_LOG_TAG=services

PG_PROBE=${TASKSYNC_PG_PROBE:-127.0.0.1:5432}
REDIS_PROBE=${TASKSYNC_REDIS_PROBE:-127.0.0.1:6379}
PG_PORT=${TASKSYNC_PG_PORT:-55432}
REDIS_PORT=${TASKSYNC_REDIS_PORT:-56379}
START_TIMEOUT=${TASKSYNC_START_TIMEOUT:-60}
STATE=${TASKSYNC_SERVICES_DIR:-/var/tmp/tasksync-$(id -u)-$(printf '%s' "$TASKSYNC_ROOT" | sha256sum | cut -c1-12)}
PG_BASE=$STATE/pg
PG_DATA=$PG_BASE/data
PG_LOG=$PG_BASE/postgres.log
REDIS_BASE=$STATE/redis
REDIS_PIDFILE=$REDIS_BASE/redis.pid
REDIS_PORTFILE=$REDIS_BASE/port
REDIS_LOG=$REDIS_BASE/redis.log

# split_hostport HOST:PORT → globals H, P.
split_hostport() {
	[[ $1 =~ ^(.+):([0-9]+)$ ]] || die "expected HOST:PORT, got '$1'"
	H=${BASH_REMATCH[1]}
	P=${BASH_REMATCH[2]}
}

# lock_state: create the state directory (ours, not a symlink) and serialise with other
# runs of this script for the same checkout, so that two `make` runs never initdb at once.
STATE_LOCKED=0
lock_state() {
	((STATE_LOCKED)) && return 0
	mkdir -p "$STATE"
	[[ -d $STATE && ! -L $STATE && -O $STATE ]] ||
		die "$STATE is not a directory owned by $(id -un); remove it or set TASKSYNC_SERVICES_DIR"
	chmod 755 "$STATE" # the postgres user must traverse it when we are root
	exec 9>>"$STATE/lock"
	flock -w 300 9 || die "another services.sh run holds $STATE/lock for over 300 s"
	STATE_LOCKED=1
}

# ---------------------------------------------------------------- PostgreSQL

need_pg_client() {
	command -v psql >/dev/null 2>&1 && command -v pg_isready >/dev/null 2>&1 && return 0
	apt_install postgresql-client ||
		die "PostgreSQL client programs (psql, pg_isready) are missing, and $(why_cannot_install). Install them (Debian: sudo apt-get install postgresql redis-server), then re-run."
	command -v psql >/dev/null 2>&1 || die "psql still missing after installing postgresql-client"
}

# pg_try URL: 0 when URL connects (no password prompt) as a role that may create
# databases; otherwise 1 with the reason in PG_WHY.
PG_WHY=""
pg_try() {
	local out
	if ! pg_isready -q -d "$1" -t 3 >/dev/null 2>&1; then
		PG_WHY="nothing accepts connections there (pg_isready)"
		return 1
	fi
	if ! out=$(PGCONNECT_TIMEOUT=5 timeout 20 psql -X -w -A -t -v ON_ERROR_STOP=1 -d "$1" \
		-c "select case when rolsuper or rolcreatedb then 'ok' else 'no' end from pg_roles where rolname = current_user" \
		</dev/null 2>&1); then
		PG_WHY=$(printf '%s' "$out" | grep -v '^$' | head -n 2 | paste -sd ' ')
		return 1
	fi
	if [[ $out != ok ]]; then
		PG_WHY="connected, but the role may not CREATE DATABASE"
		return 1
	fi
}

pg_local_url() { printf 'postgres://postgres@127.0.0.1:%s/postgres?sslmode=disable' "$1"; }

# pg_bindir: where initdb/pg_ctl live; empty when none is installed.
pg_bindir() {
	if [[ -n ${TASKSYNC_PG_BINDIR:-} ]]; then
		[[ -x $TASKSYNC_PG_BINDIR/pg_ctl ]] && printf '%s' "$TASKSYNC_PG_BINDIR"
		return 0
	fi
	local v=""
	[[ -r $PG_DATA/PG_VERSION ]] && v=$(<"$PG_DATA/PG_VERSION")
	if [[ -n $v ]]; then
		# A data directory only opens with its own major version.
		[[ -x /usr/lib/postgresql/$v/bin/pg_ctl ]] && printf '%s' "/usr/lib/postgresql/$v/bin"
		return 0
	fi
	pg_newest_bindir
}

# as_pg_owner CMD...: run CMD as the owner of the local cluster (postgres when we are root).
# The lock descriptor is closed first: a server that inherited it would hold the lock forever.
as_pg_owner() {
	if is_root; then
		(cd "$PG_BASE" && exec 9>&- && runuser -u postgres -- "$@")
	else
		(cd "$PG_BASE" && exec 9>&- && "$@")
	fi
}

# pg_ours_running: our data directory has a live postmaster; sets OURS_PORT.
OURS_PORT=""
pg_ours_running() {
	[[ -r $PG_DATA/postmaster.pid ]] || return 1
	local pid
	pid=$(sed -n 1p "$PG_DATA/postmaster.pid" 2>/dev/null) || return 1
	[[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
	[[ $(cat "/proc/$pid/comm" 2>/dev/null) == postgres ]] || return 1
	OURS_PORT=$(sed -n 4p "$PG_DATA/postmaster.pid")
	[[ $OURS_PORT =~ ^[0-9]+$ ]]
}

pg_local_ready() { pg_isready -q -h 127.0.0.1 -p "$1" -t 2 >/dev/null 2>&1; }

pg_start_local() {
	local bindir reason=$1
	bindir=$(pg_bindir)
	if [[ -z $bindir ]]; then
		if [[ -r $PG_DATA/PG_VERSION ]]; then
			die "the local cluster in $PG_DATA was made by PostgreSQL $(<"$PG_DATA/PG_VERSION"), whose programs are no longer installed; run 'scripts/services.sh destroy' to start afresh"
		fi
		apt_install postgresql ||
			die "no usable PostgreSQL: $reason; the server programs (initdb, pg_ctl under /usr/lib/postgresql/*/bin) are not installed, and $(why_cannot_install). Fix: sudo apt-get install postgresql redis-server (then re-run), or set DATABASE_ADMIN_URL to a role that may create databases."
		bindir=$(pg_bindir)
		[[ -n $bindir ]] || die "initdb/pg_ctl still missing after installing postgresql"
	fi

	mkdir -p "$PG_BASE"
	if is_root; then
		id -u postgres >/dev/null 2>&1 ||
			die "running as root, but there is no 'postgres' system user to run initdb/pg_ctl as (initdb refuses root); install Debian's postgresql package or run as an ordinary user"
		chown postgres:postgres "$PG_BASE"
		runuser -u postgres -- test -w "$PG_BASE" 2>/dev/null ||
			die "the postgres user cannot reach $PG_BASE (a parent directory is closed to it); set TASKSYNC_SERVICES_DIR to a path under /var/tmp"
	fi
	chmod 700 "$PG_BASE"

	if [[ ! -f $PG_DATA/PG_VERSION ]]; then
		log "creating a local PostgreSQL cluster in $PG_DATA ($bindir)"
		rm -rf "$PG_DATA"
		if ! as_pg_owner env LC_ALL=C.UTF-8 "$bindir/initdb" -D "$PG_DATA" -U postgres \
			--auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$PG_BASE/initdb.log" 2>&1; then
			tail -n 20 "$PG_BASE/initdb.log" >&2
			rm -rf "$PG_DATA"
			die "initdb failed (full log: $PG_BASE/initdb.log)"
		fi
		cat >>"$PG_DATA/postgresql.conf" <<EOF

# tasksync project-local development cluster (scripts/services.sh)
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PG_BASE'
max_connections = 200
EOF
	fi

	log "starting the local PostgreSQL on 127.0.0.1:$PG_PORT (log: $PG_LOG)"
	if ! as_pg_owner "$bindir/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -o "-p $PG_PORT" \
		-w -t "$START_TIMEOUT" start >/dev/null 2>&1; then
		tail -n 20 "$PG_LOG" >&2 || true
		die "the local PostgreSQL did not start on 127.0.0.1:$PG_PORT (log: $PG_LOG); if the port is taken, set TASKSYNC_PG_PORT"
	fi
	wait_for "$START_TIMEOUT" pg_local_ready "$PG_PORT" ||
		die "the local PostgreSQL started but 127.0.0.1:$PG_PORT did not accept connections within ${START_TIMEOUT}s (log: $PG_LOG)"
}

ensure_pg() {
	need_pg_client
	if [[ -n ${DATABASE_ADMIN_URL:-} ]]; then
		pg_try "$DATABASE_ADMIN_URL" ||
			die "DATABASE_ADMIN_URL is set but unusable: $PG_WHY. Fix it or unset it to let this script provide PostgreSQL."
		log "PostgreSQL: using DATABASE_ADMIN_URL from the environment"
		PG_URL=$DATABASE_ADMIN_URL
		return 0
	fi

	local reason="no existing server was probed (TASKSYNC_PG_PROBE=off)" url
	if [[ $PG_PROBE != off ]]; then
		split_hostport "$PG_PROBE"
		url="postgres://postgres@$H:$P/postgres?sslmode=disable"
		if pg_try "$url"; then
			log "PostgreSQL: reusing $H:$P (user postgres, no password)"
			PG_URL=$url
			return 0
		fi
		reason="$H:$P is not usable as user postgres without a password: $PG_WHY"
		log "PostgreSQL: $reason; using a project-local cluster"
	fi

	lock_state
	if pg_ours_running; then
		wait_for "$START_TIMEOUT" pg_local_ready "$OURS_PORT" ||
			die "the local PostgreSQL (pid file $PG_DATA/postmaster.pid) does not accept connections on 127.0.0.1:$OURS_PORT; see $PG_LOG, or run 'scripts/services.sh stop'"
		url=$(pg_local_url "$OURS_PORT")
		pg_try "$url" || die "the local PostgreSQL on 127.0.0.1:$OURS_PORT is running but unusable: $PG_WHY"
		log "PostgreSQL: reusing the local cluster already running on 127.0.0.1:$OURS_PORT ($PG_DATA)"
		PG_URL=$url
		return 0
	fi

	url=$(pg_local_url "$PG_PORT")
	if pg_local_ready "$PG_PORT"; then
		pg_try "$url" ||
			die "127.0.0.1:$PG_PORT is taken by a PostgreSQL that is not usable as postgres without a password ($PG_WHY); set TASKSYNC_PG_PORT to a free port"
		log "PostgreSQL: reusing a trust-auth cluster already on 127.0.0.1:$PG_PORT (not started by this checkout; 'stop' leaves it alone)"
		PG_URL=$url
		return 0
	fi

	pg_start_local "$reason"
	pg_ours_running || die "the local PostgreSQL started but its postmaster.pid is missing"
	url=$(pg_local_url "$OURS_PORT")
	pg_try "$url" || die "the local PostgreSQL started but is unusable: $PG_WHY (log: $PG_LOG)"
	log "PostgreSQL: local cluster running on 127.0.0.1:$OURS_PORT (stop it with 'make services-stop')"
	PG_URL=$url
}

# ---------------------------------------------------------------- Redis

need_redis_cli() {
	command -v redis-cli >/dev/null 2>&1 && return 0
	apt_install redis-tools ||
		die "redis-cli is missing, and $(why_cannot_install). Install it (Debian: sudo apt-get install redis-server), then re-run."
	command -v redis-cli >/dev/null 2>&1 || die "redis-cli still missing after installing redis-tools"
}

redis_ping_url() { [[ $(timeout 5 redis-cli -u "$1" ping 2>/dev/null </dev/null) == PONG ]]; }
redis_ping() { [[ $(timeout 5 redis-cli -h "$1" -p "$2" ping 2>/dev/null </dev/null) == PONG ]]; }

# redis_ours_running: the redis-server this script started (pid file) is alive; sets OURS_PORT.
redis_ours_running() {
	[[ -r $REDIS_PIDFILE && -r $REDIS_PORTFILE ]] || return 1
	local pid
	pid=$(<"$REDIS_PIDFILE")
	[[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
	[[ $(cat "/proc/$pid/comm" 2>/dev/null) == redis-server* ]] || return 1
	OURS_PORT=$(<"$REDIS_PORTFILE")
}

ensure_redis() {
	need_redis_cli
	if [[ -n ${REDIS_URL:-} ]]; then
		redis_ping_url "$REDIS_URL" ||
			die "REDIS_URL is set but 'redis-cli -u \$REDIS_URL ping' does not answer PONG. Fix it or unset it to let this script provide Redis."
		log "Redis: using REDIS_URL from the environment"
		R_URL=$REDIS_URL
		return 0
	fi

	local reason="no existing server was probed (TASKSYNC_REDIS_PROBE=off)"
	if [[ $REDIS_PROBE != off ]]; then
		split_hostport "$REDIS_PROBE"
		if redis_ping "$H" "$P"; then
			log "Redis: reusing $H:$P"
			R_URL="redis://$H:$P/0"
			return 0
		fi
		reason="nothing at $H:$P answers PING"
		log "Redis: $reason; using a project-local redis-server"
	fi

	lock_state
	mkdir -p "$REDIS_BASE"
	chmod 700 "$REDIS_BASE"
	if redis_ours_running; then
		wait_for "$START_TIMEOUT" redis_ping 127.0.0.1 "$OURS_PORT" ||
			die "the local redis-server (pid $(<"$REDIS_PIDFILE")) does not answer on 127.0.0.1:$OURS_PORT; see $REDIS_LOG, or run 'scripts/services.sh stop'"
		log "Redis: reusing the local redis-server already running on 127.0.0.1:$OURS_PORT"
		R_URL="redis://127.0.0.1:$OURS_PORT/0"
		return 0
	fi
	if redis_ping 127.0.0.1 "$REDIS_PORT"; then
		log "Redis: reusing a redis-server already on 127.0.0.1:$REDIS_PORT (not started by this checkout; 'stop' leaves it alone)"
		R_URL="redis://127.0.0.1:$REDIS_PORT/0"
		return 0
	fi

	if ! command -v redis-server >/dev/null 2>&1; then
		apt_install redis-server ||
			die "no usable Redis: $reason; redis-server is not installed, and $(why_cannot_install). Fix: sudo apt-get install redis-server (then re-run), or set REDIS_URL."
		command -v redis-server >/dev/null 2>&1 || die "redis-server still missing after installing it"
	fi
	log "starting a local redis-server on 127.0.0.1:$REDIS_PORT (log: $REDIS_LOG)"
	rm -f "$REDIS_PIDFILE"
	printf '%s\n' "$REDIS_PORT" >"$REDIS_PORTFILE"
	redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
		--daemonize yes --dir "$REDIS_BASE" --pidfile "$REDIS_PIDFILE" --logfile "$REDIS_LOG" \
		</dev/null >&2 9>&- || die "redis-server failed to start (log: $REDIS_LOG)"
	if ! wait_for "$START_TIMEOUT" redis_ping 127.0.0.1 "$REDIS_PORT"; then
		tail -n 20 "$REDIS_LOG" >&2 || true
		die "the local redis-server did not answer PING on 127.0.0.1:$REDIS_PORT within ${START_TIMEOUT}s (log: $REDIS_LOG); if the port is taken, set TASKSYNC_REDIS_PORT"
	fi
	# The pid file is written just after the socket opens; wait for it so 'stop' can find it.
	wait_for 10 redis_ours_running || die "the local redis-server runs but wrote no pid file ($REDIS_PIDFILE)"
	log "Redis: local redis-server running on 127.0.0.1:$REDIS_PORT (stop it with 'make services-stop')"
	R_URL="redis://127.0.0.1:$REDIS_PORT/0"
}

# ---------------------------------------------------------------- commands

cmd_ensure() {
	ensure_pg
	ensure_redis
	printf 'export DATABASE_ADMIN_URL=%s\n' "$(shell_quote "$PG_URL")"
	printf 'export REDIS_URL=%s\n' "$(shell_quote "$R_URL")"
}

pid_gone() { ! kill -0 "$1" 2>/dev/null; }

cmd_stop() {
	if [[ ! -d $STATE ]]; then
		log "nothing to stop: this checkout never started a local service ($STATE does not exist)"
		return 0
	fi
	lock_state
	local stopped=0 bindir pid
	if pg_ours_running; then
		pid=$(sed -n 1p "$PG_DATA/postmaster.pid")
		bindir=$(pg_bindir)
		log "stopping the local PostgreSQL on 127.0.0.1:$OURS_PORT (pid $pid)"
		if [[ -n $bindir ]]; then
			as_pg_owner "$bindir/pg_ctl" -D "$PG_DATA" -m fast -w -t "$START_TIMEOUT" stop >/dev/null ||
				die "pg_ctl stop failed (log: $PG_LOG)"
		else
			kill -INT "$pid" # fast shutdown, as pg_ctl -m fast does
			wait_for "$START_TIMEOUT" pid_gone "$pid" || die "PostgreSQL (pid $pid) did not stop"
		fi
		stopped=1
	fi
	if redis_ours_running; then
		pid=$(<"$REDIS_PIDFILE")
		log "stopping the local redis-server on 127.0.0.1:$OURS_PORT (pid $pid)"
		kill -TERM "$pid"
		if ! wait_for "$START_TIMEOUT" pid_gone "$pid"; then
			kill -KILL "$pid" 2>/dev/null || true
			wait_for 5 pid_gone "$pid" || die "redis-server (pid $pid) did not stop"
		fi
		rm -f "$REDIS_PIDFILE"
		stopped=1
	fi
	((stopped)) || log "nothing to stop: no local service started by this checkout is running"
}

cmd_status() {
	log "state directory: $STATE"
	if pg_ours_running; then
		log "PostgreSQL: local cluster running on 127.0.0.1:$OURS_PORT"
	else
		log "PostgreSQL: no local cluster of this checkout is running"
	fi
	if redis_ours_running; then
		log "Redis: local redis-server running on 127.0.0.1:$OURS_PORT"
	else
		log "Redis: no local redis-server of this checkout is running"
	fi
}

cmd_destroy() {
	cmd_stop
	if [[ -d $STATE ]]; then
		log "deleting $STATE"
		rm -rf "$STATE"
	fi
}

case ${1:-} in
ensure) cmd_ensure ;;
stop) cmd_stop ;;
status) cmd_status ;;
destroy) cmd_destroy ;;
*)
	echo "usage: $0 ensure|stop|status|destroy   (see the top of this file)" >&2
	exit 2
	;;
esac
