#!/usr/bin/env bash
# `make chaos`: the fault harness of docs/RELIABILITY.md. Two server instances on one database and
# one Redis, writers that resend every unanswered mutation under its mutation_id, readers that check
# every frame, and faults during the load: SIGKILL of an instance, PostgreSQL restarted (fast, then
# immediate), Redis killed, SIGTERM of an instance holding hundreds of sockets, poison frames. Prints
# mutations sent, acked, lost, duplicated, reader gaps and the rest (cmd/chaos). Then the scenarios,
# issue 9's repros of rows 1-5, each on fresh server processes: a snapshot flood, 1,000 sockets
# connecting under writes (Redis up, then down), a locked table, slow request bodies, poison frames
# amid batched writes. Exits non-zero when a promise is broken.
#
#   make chaos                                  # everything, about 8 minutes
#   CHAOS_QUICK=1 make chaos                    # the short version (about a minute and a half) that make test runs
#   CHAOS_FAULTS=kill9,poison make chaos        # only these faults, in this order
#                                               # (kill9 pg-restart pg-crash redis-kill sigterm poison; none)
#   CHAOS_SCENARIOS=snapshot-flood make chaos   # only these scenarios after the fault run (snapshot-flood
#                                               # hello-first locked-table slow-bodies poison-batch; none)
#   CHAOS_FAULT_RUN=0 make chaos                # the scenarios alone, without the fault run
#   CHAOS_FLAGS="--rate 120 --crowd 800" make chaos   # any other flag of cmd/chaos (go run ./cmd/chaos -h)
#   CHAOS_RACE=1 make chaos                     # server and harness built with -race; a race report fails the run
#   CHAOS_SERVER_BIN=/path/server make chaos    # test this server binary instead of building ./cmd/server
#
# It never touches the shared PostgreSQL or Redis (nor those of scripts/services.sh): it starts its
# own PostgreSQL (initdb into a new directory under /var/tmp, pg_ctl on a free loopback port; as root
# both run as the `postgres` system user, since they refuse root) and its own redis-server on another
# free port, and removes both at exit, after a failure or Ctrl-C too. The PostgreSQL and Redis faults
# are carried out by this script when cmd/chaos calls it back as `scripts/chaos.sh _hook ACTION`.
#
# Output: the table on stdout; server logs and result.json in chaos-results/<UTC timestamp>/ (kept
# for full runs, and for quick runs that fail). chaos-results/ is gitignored.

# Functions below run from traps, wait_for and the _hook branch, which shellcheck cannot follow.
# shellcheck disable=SC2317
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
TASKSYNC_LOG_TAG=chaos

# as_pg CMD...: run CMD as the owner of the private cluster (postgres when we are root).
as_pg() {
	if is_root; then
		(cd "$CHAOS_STATE/pg" && runuser -u postgres -- "$@")
	else
		(cd "$CHAOS_STATE/pg" && "$@")
	fi
}

redis_up() { [[ $(timeout 5 redis-cli -h 127.0.0.1 -p "$CHAOS_REDIS_PORT" ping 2>/dev/null </dev/null) == PONG ]]; }

redis_start() {
	rm -f "$CHAOS_STATE/redis/redis.pid"
	redis-server --port "$CHAOS_REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
		--daemonize yes --dir "$CHAOS_STATE/redis" --pidfile "$CHAOS_STATE/redis/redis.pid" \
		--logfile "$CHAOS_STATE/redis/redis.log" </dev/null >&2 || die "redis-server did not start"
	wait_for 30 redis_up || die "the private redis-server does not answer on 127.0.0.1:$CHAOS_REDIS_PORT"
	wait_for 10 test -s "$CHAOS_STATE/redis/redis.pid" || die "the private redis-server wrote no pid file"
}

pid_gone() { ! kill -0 "$1" 2>/dev/null; }

redis_kill() {
	local pid
	pid=$(cat "$CHAOS_STATE/redis/redis.pid" 2>/dev/null) || return 0
	[[ $pid =~ ^[0-9]+$ ]] || return 0
	kill -KILL "$pid" 2>/dev/null || true
	wait_for 10 pid_gone "$pid" || die "redis-server (pid $pid) survived SIGKILL"
	rm -f "$CHAOS_STATE/redis/redis.pid"
}

pg_restart() { # MODE: fast | immediate
	as_pg "$CHAOS_PG_BINDIR/pg_ctl" -D "$CHAOS_STATE/pg/data" -l "$CHAOS_STATE/pg/postgres.log" \
		-m "$1" -w -t 120 restart >/dev/null || die "pg_ctl restart -m $1 failed (log: $CHAOS_STATE/pg/postgres.log)"
}

# ------------------------------------------------------------------ callback from cmd/chaos
if [[ ${1:-} == _hook ]]; then
	[[ -n ${CHAOS_STATE:-} && -d $CHAOS_STATE ]] || die "_hook is for cmd/chaos, run by scripts/chaos.sh"
	case ${2:-} in
	pg-restart) pg_restart "${3:-fast}" ;;
	redis-kill) redis_kill ;;
	redis-start) redis_start ;;
	*) die "unknown hook action '${2:-}'" ;;
	esac
	exit 0
fi
[[ $# -eq 0 ]] || die "no arguments (knobs are environment variables: see the top of $0)"

cd "$TASKSYNC_ROOT"
need_go
need_ca_certs
QUICK=${CHAOS_QUICK:-0}

# ------------------------------------------------------------------ programs
CHAOS_PG_BINDIR=${TASKSYNC_PG_BINDIR:-$(pg_newest_bindir)}
if [[ -z $CHAOS_PG_BINDIR ]]; then
	apt_install postgresql || die "initdb/pg_ctl (Debian: postgresql) are missing and $(why_cannot_install)"
	CHAOS_PG_BINDIR=$(pg_newest_bindir)
	[[ -n $CHAOS_PG_BINDIR ]] || die "initdb/pg_ctl still missing after installing postgresql"
fi
if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
	apt_install redis-server || die "redis-server/redis-cli are missing and $(why_cannot_install)"
fi
if is_root; then
	id -u postgres >/dev/null 2>&1 ||
		die "running as root, but there is no 'postgres' system user to run initdb/pg_ctl as (they refuse root)"
fi

# ------------------------------------------------------------------ state and clean-up
CHAOS_STATE=$(mktemp -d /var/tmp/tasksync-chaos.XXXXXX)
chmod 755 "$CHAOS_STATE" # the postgres user must traverse it when we are root
OUT=$CHAOS_STATE/out
mkdir -p "$CHAOS_STATE/pg" "$CHAOS_STATE/redis" "$CHAOS_STATE/bin" "$OUT"
is_root && chown postgres:postgres "$CHAOS_STATE/pg"
CHAOS_PID=""
TS=$(date -u +%Y%m%dT%H%M%SZ)

cleanup() {
	local rc=$? pid bin
	trap - EXIT INT TERM
	if [[ -n $CHAOS_PID ]] && kill -0 "$CHAOS_PID" 2>/dev/null; then
		kill -TERM "$CHAOS_PID" 2>/dev/null || true
		wait_for 40 pid_gone "$CHAOS_PID" || kill -KILL "$CHAOS_PID" 2>/dev/null || true
	fi
	# Server instances cmd/chaos started, should it have died without stopping them.
	if [[ -f $OUT/pids ]]; then
		while read -r pid bin; do
			if [[ $pid =~ ^[0-9]+$ && $(readlink "/proc/$pid/exe" 2>/dev/null) == "$bin" ]]; then
				kill -KILL "$pid" 2>/dev/null || true
			fi
		done <"$OUT/pids"
	fi
	if [[ -f $CHAOS_STATE/pg/data/postmaster.pid ]]; then
		as_pg "$CHAOS_PG_BINDIR/pg_ctl" -D "$CHAOS_STATE/pg/data" -m immediate -w -t 60 stop >/dev/null 2>&1 || true
	fi
	redis_kill 2>/dev/null || true
	if [[ $QUICK != 1 || $rc != 0 ]] && [[ -d $OUT ]]; then
		mkdir -p chaos-results
		cp -r "$OUT" "chaos-results/$TS" && log "logs and result.json: chaos-results/$TS/"
		cp "$CHAOS_STATE/pg/postgres.log" "chaos-results/$TS/" 2>/dev/null || true
		cp "$CHAOS_STATE/redis/redis.log" "chaos-results/$TS/" 2>/dev/null || true
	fi
	rm -rf "$CHAOS_STATE"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------ private PostgreSQL and Redis
CHAOS_PG_PORT=$(free_port)
log "private PostgreSQL on 127.0.0.1:$CHAOS_PG_PORT ($CHAOS_PG_BINDIR, data in $CHAOS_STATE/pg)"
as_pg env LC_ALL=C.UTF-8 "$CHAOS_PG_BINDIR/initdb" -D "$CHAOS_STATE/pg/data" -U postgres \
	--auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$CHAOS_STATE/pg/initdb.log" 2>&1 ||
	{ tail -n 20 "$CHAOS_STATE/pg/initdb.log" >&2; die "initdb failed"; }
cat >>"$CHAOS_STATE/pg/data/postgresql.conf" <<EOF

# tasksync chaos run (scripts/chaos.sh): private, loopback only, removed at exit
listen_addresses = '127.0.0.1'
port = $CHAOS_PG_PORT
unix_socket_directories = '$CHAOS_STATE/pg'
max_connections = 200
EOF
as_pg "$CHAOS_PG_BINDIR/pg_ctl" -D "$CHAOS_STATE/pg/data" -l "$CHAOS_STATE/pg/postgres.log" -w -t 60 start >/dev/null ||
	{ tail -n 20 "$CHAOS_STATE/pg/postgres.log" >&2; die "the private PostgreSQL did not start"; }

CHAOS_REDIS_PORT=$(free_port)
[[ $CHAOS_REDIS_PORT != "$CHAOS_PG_PORT" ]] || CHAOS_REDIS_PORT=$(free_port)
log "private Redis on 127.0.0.1:$CHAOS_REDIS_PORT"
redis_start
export CHAOS_STATE CHAOS_PG_BINDIR CHAOS_REDIS_PORT

# ------------------------------------------------------------------ build and run
race=()
[[ ${CHAOS_RACE:-0} == 1 ]] && race=(-race)
SERVER_BIN=$CHAOS_STATE/bin/server
if [[ -n ${CHAOS_SERVER_BIN:-} ]]; then
	[[ -x $CHAOS_SERVER_BIN ]] || die "CHAOS_SERVER_BIN=$CHAOS_SERVER_BIN is not an executable"
	SERVER_BIN=$(realpath "$CHAOS_SERVER_BIN")
	log "testing the server binary $SERVER_BIN; building cmd/chaos"
else
	log "building the server and cmd/chaos ${race[*]}"
	go build "${race[@]}" -o "$SERVER_BIN" ./cmd/server
fi
go build "${race[@]}" -o "$CHAOS_STATE/bin/chaos" ./cmd/chaos

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
args=(--server "$SERVER_BIN"
	--database-admin-url "postgres://postgres@127.0.0.1:$CHAOS_PG_PORT/postgres?sslmode=disable"
	--redis-url "redis://127.0.0.1:$CHAOS_REDIS_PORT/0"
	--hook "$TASKSYNC_ROOT/scripts/chaos.sh _hook"
	--out "$OUT")
[[ $QUICK == 1 ]] && args+=(--quick)
[[ -n ${CHAOS_FAULTS:-} ]] && args+=(--faults "$CHAOS_FAULTS")
[[ -n ${CHAOS_SCENARIOS:-} ]] && args+=(--scenarios "$CHAOS_SCENARIOS")
[[ ${CHAOS_FAULT_RUN:-1} == 0 ]] && args+=(--fault-run=false)
# shellcheck disable=SC2206 # CHAOS_FLAGS is a list of flags
[[ -n ${CHAOS_FLAGS:-} ]] && args+=(${CHAOS_FLAGS})

STATUS=0
"$CHAOS_STATE/bin/chaos" "${args[@]}" &
CHAOS_PID=$!
wait "$CHAOS_PID" || STATUS=$?
CHAOS_PID=""
exit "$STATUS"
