#!/usr/bin/env bash
# `make bench`: the scenarios of docs/BENCHMARKS.md, each beside its baseline measured in the same
# run, then one table of figures, baselines and ratios. Loopback only; every run is bounded in time.
#
#   make bench                    # the whole suite, about 10 minutes (+ about 6 with CENTRIFUGO_BIN)
#   BENCH_QUICK=1 make bench      # everything, small and short: a smoke test (about 2 minutes)
#   CENTRIFUGO_BIN=/path/to/centrifugo BENCH_ONLY=peer BENCH_REPEAT=2 make bench
#                                 # only the Centrifugo peer rows, twice each (about 12 minutes)
#
# Output: the table on stdout; bench-results/<UTC timestamp>.json (machine, table, every run's JSON)
# and bench-results/<UTC timestamp>/ (each run's JSON and text, server logs, pgbench output).
# bench-results/ is gitignored.
#
# Knobs:
#   BENCH_QUICK=1        small counts and 3 s windows
#   BENCH_REPEAT=N       run the rate and latency scenarios (a, b, c, e) N times, alternating
#                        with their baselines; the table shows the median and the min..max spread
#   BENCH_WRITERS=W      concurrency of scenario (a) and of its pgbench baseline (default 16)
#   BENCH_ONLY="a b"     run only these scenarios (a b c d e f redis peer go)
#   BENCH_STORM_SOCKETS, BENCH_STORM_USERS   scenario f's size (10000 sockets of 1000 users; quick: 1000/100)
#   BENCH_STORM_ENV="VAR=V ..."   extra server settings for both instances of scenario f
#   CENTRIFUGO_BIN=PATH  a Centrifugo v6 binary (github.com/centrifugal/centrifugo, built from source or
#                        a release) for the peer rows; unset: they are skipped, with a note
#   BENCH_PEER="bc bcpg bcfix mem resume lat latapi latpg"   the peer rows to run: broadcast (memory and Redis
#                        engines; bcpg: also its Postgres broker; bcfix: again at a fixed 300 changes/s on
#                        both sides, for CPU per delivery at equal work), memory, resume, and the
#                        cross-instance row with Centrifugo's Redis engine publishing from a client socket (lat)
#                        or through its server API (latapi), and with its Postgres broker, both ways (latpg)
#   BENCH_GO=0           skip the Go micro-benchmarks
#   BENCH_BASE_BIN=PATH  another build of the server (e.g. main before a change): scenario b also runs
#                        it, on a second scratch database migrated by that build, alternating with
#                        this build in every repetition (the before/after rows)
#   BENCH_PORT_BASE=P    first of the loopback ports used (default 18400)
#   plus the knobs of scripts/services.sh (DATABASE_ADMIN_URL, REDIS_URL, ...)
#
# What runs (docs/BENCHMARKS.md explains each):
#   a  W sockets of W users, closed loop (one mutation in flight each)   vs pgbench INSERT+pg_notify,
#      W clients; pgbench running tasksync's own write (INSERT INTO tasks in a transaction, change-log
#      triggers and all), W clients; pgbench plain INSERT at 16 clients (the group-commit goal);
#      and the socket run once more with group commit off (one transaction per mutation)
#   b  two instances, 10 users with 4 sockets each (2 per instance), 200 mutations/s
#      vs raw NOTIFY -> LISTEN at 200/s (and INSERT+pg_notify -> LISTEN)
#   c  1000 sockets of 10 users (100 each), one writer per user, closed loop
#      vs cmd/wsbaseline (bare coder/websocket broadcast), same sockets, same frames
#   d  RSS per idle authenticated socket (5000) vs the bare library; then 19,890 idle sockets held
#      by one instance (two loadgen processes) while 4 users write 200/s in all and 2 chat 1/s
#      against the test model server (loadgen model: OpenAI wire format, an add_task call a turn)
#   e  4 users with 2 sockets each, 200 mutations/s in all (one writer socket per user: a socket's
#      requests are served one after the other, so one socket at 200/s would measure its own queue):
#      without, with, and again without 10,000 idle sockets of other users on the same instance
#   f  the reconnect storm: 10,000 sockets of 1000 users on instance A while 200 creates/s go over
#      REST to instance B; kill -9 A; every socket reconnects to B with ?since= and full-jitter backoff:
#      time until all are current, events missed and doubled (every socket's seqs against user_seqs),
#      errors and disconnects on B, Postgres transactions/s (pg_stat_database) before and during
#   redis  PUBLISH -> SUBSCRIBE latency at 200/s and one publisher's closed-loop rate
#   peer   Centrifugo beside tasksync, alternating runs, the same loadgen, sockets, rates and task-event
#          data (loadgen sockets --proto centrifugo): broadcast to 1000 sockets in 10 groups of 100
#          (memory and Redis engines), RSS per idle authenticated socket (5000), resume after missing
#          1000 changes (?since= vs recovery; Centrifugo memory, Redis and Postgres), cross-instance
#          write-to-other-socket at 200/s (two instances each: tasksync over Postgres; Centrifugo over its
#          Redis engine, publishing from a client socket and through its HTTP server API, and over its
#          Postgres broker, both ways, on a scratch database of its own)
#   go     go test -bench (frame encode/decode, hub fan-out, change-log append)
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
TASKSYNC_LOG_TAG=bench
cd "$TASKSYNC_ROOT"
need_go

QUICK=${BENCH_QUICK:-0}
REPEAT=${BENCH_REPEAT:-1}
W=${BENCH_WRITERS:-16}
ONLY=${BENCH_ONLY:-"a b c d e f redis peer go"}
[[ ${BENCH_GO:-1} == 0 ]] && ONLY=${ONLY//go/}
PORT=${BENCH_PORT_BASE:-18400}
[[ $REPEAT =~ ^[1-9]$ ]] || die "BENCH_REPEAT must be 1..9"
[[ $W =~ ^[0-9]+$ ]] && ((W >= 1 && W <= 64)) || die "BENCH_WRITERS must be 1..64"

if [[ $QUICK == 1 ]]; then
	WIN=3s WARM=1s PGT=3 IDLE_MEM=300 HOLD_EACH=500 IDLE_E=1000 C_USERS=4 C_PER_USER=25 SETTLE=1s
else
	WIN=15s WARM=3s PGT=15 IDLE_MEM=5000 HOLD_EACH=9945 IDLE_E=10000 C_USERS=10 C_PER_USER=100 SETTLE=3s
fi
want() { [[ " $ONLY " == *" $1 "* ]]; }

command -v pgbench >/dev/null 2>&1 || apt_install postgresql-client ||
	die "pgbench is missing and $(why_cannot_install) (Debian: apt-get install postgresql-client)"

env_lines=$("$TASKSYNC_ROOT/scripts/services.sh" ensure) || die "PostgreSQL/Redis are not available (see above)"
eval "$env_lines"

# File descriptors: one per socket on both sides. The hard limit is what this user may have; raising
# it needs CAP_SYS_RESOURCE (not granted in every sandbox), so take the hard limit and plan with it.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
FD_LIMIT=$(ulimit -n)
if [[ $QUICK != 1 ]] && ((FD_LIMIT < 2 * HOLD_EACH + 100)); then
	HOLD_EACH=$(((FD_LIMIT - 120) / 2))
	log "open files limited to $FD_LIMIT: holding $((2 * HOLD_EACH)) idle sockets in scenario d"
fi
if ((FD_LIMIT < IDLE_E + 100)); then
	IDLE_E=$((FD_LIMIT - 120))
fi

TS=$(date -u +%Y%m%dT%H%M%SZ)
OUT=bench-results/$TS
BIN=$OUT/bin
mkdir -p "$OUT/logs" "$BIN"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
log "results in $OUT (load average now: $LOAD_BEFORE; the machine is shared, figures are noisy)"

log "building server, loadgen, wsbaseline"
go build -o "$BIN/server" ./cmd/server
go build -o "$BIN/loadgen" ./cmd/loadgen
go build -o "$BIN/wsbaseline" ./cmd/wsbaseline
LG=$BIN/loadgen

# Scratch database and Redis prefix, removed at exit.
DB=bench_$(printf '%s' "$TS" | tr 'A-Z' 'a-z')
psql -X -w -q -v ON_ERROR_STOP=1 -d "$DATABASE_ADMIN_URL" -c "CREATE DATABASE $DB" </dev/null
DBURL=$(url_with_db "$DATABASE_ADMIN_URL" "$DB")
PREFIX=bench-$TS
SECRET=$(head -c 36 /dev/urandom | base64 | tr '+/' '-_' | tr -d '\n')

declare -A PIDS=()
cleanup() {
	local name
	for name in "${!PIDS[@]}"; do
		kill "${PIDS[$name]}" 2>/dev/null || true
	done
	for name in "${!PIDS[@]}"; do
		wait "${PIDS[$name]}" 2>/dev/null || true
	done
	psql -X -w -q -d "$DATABASE_ADMIN_URL" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" </dev/null >/dev/null 2>&1 || true
	psql -X -w -q -d "$DATABASE_ADMIN_URL" -c "DROP DATABASE IF EXISTS ${DB}_base WITH (FORCE)" </dev/null >/dev/null 2>&1 || true
	psql -X -w -q -d "$DATABASE_ADMIN_URL" -c "DROP DATABASE IF EXISTS ${DB}_cf WITH (FORCE)" </dev/null >/dev/null 2>&1 || true
	redis-cli -u "$REDIS_URL" --scan --pattern "$PREFIX*" 2>/dev/null | xargs -r redis-cli -u "$REDIS_URL" del >/dev/null 2>&1 || true
}
trap cleanup EXIT

# start_server NAME PORT [VAR=VALUE...]: one tasksync instance on 127.0.0.1:PORT, as scripts/dev.sh
# configures it, with the socket limits raised for load.
# SERVER_BIN and SERVER_DB (default: this build, the scratch database) pick another build.
start_server() {
	local name=$1 port=$2
	shift 2
	port_free "$port" || die "port $port is taken; set BENCH_PORT_BASE"
	env DATABASE_URL="${SERVER_DB:-$DBURL}" REDIS_URL="$REDIS_URL" REDIS_PREFIX="$PREFIX" LISTEN_ADDR="127.0.0.1:$port" \
		AUTH_JWT_SECRET="$SECRET" AUTO_MIGRATE=false LOG_LEVEL=warn INSTANCE_ID="$name" \
		WS_FRAME_RATE=100000 WS_FRAME_BURST=100000 WS_MAX_SOCKETS_PER_USER=100000 "$@" \
		"${SERVER_BIN:-$BIN/server}" serve >"$OUT/logs/$name.log" 2>&1 &
	PIDS[$name]=$!
	wait_until 30 http_ok "$port" /readyz || die "server $name did not become ready (see $OUT/logs/$name.log)"
}

stop() { # NAME...
	local name
	for name in "$@"; do
		[[ -n ${PIDS[$name]:-} ]] || continue
		kill "${PIDS[$name]}" 2>/dev/null || true
		wait "${PIDS[$name]}" 2>/dev/null || true
		unset "PIDS[$name]"
	done
}

start_bare() { # NAME PORT
	port_free "$2" || die "port $2 is taken; set BENCH_PORT_BASE"
	"$BIN/wsbaseline" --addr "127.0.0.1:$2" >"$OUT/logs/$1.log" 2>&1 &
	PIDS[$1]=$!
	wait_until 10 port_listening "$2" || die "wsbaseline did not start (see $OUT/logs/$1.log)"
}
port_listening() { ! port_free "$1"; }

ws() { printf 'ws://127.0.0.1:%s/ws' "$1"; }

# sockets NAME ARGS...: one loadgen sockets run, its text to the console and NAME.txt, JSON to NAME.json.
sockets() {
	local name=$1
	shift
	"$LG" sockets --label "$name" --secret "$SECRET" --json "$OUT/$name.json" --warmup "$WARM" --duration "$WIN" \
		--settle "$SETTLE" "$@" | tee "$OUT/$name.txt" || log "$name: loadgen reported an error (counted in the table)"
}

# started FILE PID: the background loadgen wrote FILE (its sockets are open), or it has ended.
started() { [[ -e $1 ]] || ! kill -0 "$2" 2>/dev/null; }

# pgbench_run NAME CLIENTS SCRIPT: TPS and average latency into NAME.json.
pgbench_run() {
	local name=$1 clients=$2 script=$3 out tps lat
	out=$OUT/$name.txt
	pgbench -n -c "$clients" -j "$((clients < 2 ? 1 : 2))" -T "$PGT" -M prepared -f "$script" "$DBURL" >"$out" 2>&1 ||
		log "pgbench failed (see $out)"
	tps=$(awk '/^tps = /{print $3; exit}' "$out")
	lat=$(awk '/^latency average = /{print $4; exit}' "$out")
	printf '{"tool":"pgbench","label":"%s","clients":%d,"duration_s":%d,"tps":%s,"latency_avg_ms":%s}\n' \
		"$name" "$clients" "$PGT" "${tps:-0}" "${lat:-0}" >"$OUT/$name.json"
	log "$name: pgbench $clients clients: $tps tps, latency avg $lat ms"
}

log "migrating the scratch database $DB"
DATABASE_URL=$DBURL AUTH_JWT_SECRET=$SECRET "$BIN/server" migrate >"$OUT/logs/migrate.log" 2>&1 ||
	die "migrate failed (see $OUT/logs/migrate.log)"
BASE_DBURL=""
if [[ -n ${BENCH_BASE_BIN:-} ]] && want b; then
	[[ -x $BENCH_BASE_BIN ]] || die "BENCH_BASE_BIN=$BENCH_BASE_BIN is not an executable"
	psql -X -w -q -v ON_ERROR_STOP=1 -d "$DATABASE_ADMIN_URL" -c "CREATE DATABASE ${DB}_base" </dev/null
	BASE_DBURL=$(url_with_db "$DATABASE_ADMIN_URL" "${DB}_base")
	log "migrating ${DB}_base with BENCH_BASE_BIN ($BENCH_BASE_BIN)"
	DATABASE_URL=$BASE_DBURL AUTH_JWT_SECRET=$SECRET "$BENCH_BASE_BIN" migrate >"$OUT/logs/migrate-base.log" 2>&1 ||
		die "migrate with BENCH_BASE_BIN failed (see $OUT/logs/migrate-base.log)"
fi

# ------------------------------------------------------------------------------------------ (a)
if want a; then
	log "== (a) mutation throughput through sockets vs pgbench, $W writers"
	psql -X -w -q -v ON_ERROR_STOP=1 -d "$DBURL" </dev/null \
		-c "CREATE TABLE pgb_tasks (id bigserial PRIMARY KEY, user_id text NOT NULL, title text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
	cat >"$OUT/insert_notify.sql" <<'EOF'
\set r random(1, 1000000000)
BEGIN;
INSERT INTO pgb_tasks (user_id, title) VALUES ('u' || :client_id, 'bench ' || :r);
SELECT pg_notify('pgb_bench', :client_id || ':' || :r);
END;
EOF
	cat >"$OUT/insert.sql" <<'EOF'
\set r random(1, 1000000000)
INSERT INTO pgb_tasks (user_id, title) VALUES ('u' || :client_id, 'bench ' || :r);
EOF
	# tasksync's own write, as tasks.Service.Create sends it (the change-log triggers add the
	# sequence upsert, the event row and pg_notify): what Postgres allows for the same work.
	cat >"$OUT/task_tx.sql" <<'EOF'
\set r random(1, 1000000000)
BEGIN;
INSERT INTO tasks (user_id, title, description, completed, priority, tags, due_at) VALUES ('pgb-' || :client_id, 'bench ' || :r, '', false, 'medium', '{}', NULL) RETURNING id, user_id, title, description, completed, priority, tags, due_at, created_at, updated_at, version;
END;
EOF
	for r in $(seq "$REPEAT"); do
		pgbench_run "a-pgbench-notify-r$r" "$W" "$OUT/insert_notify.sql"
		pgbench_run "a-pgbench-tasktx-r$r" "$W" "$OUT/task_tx.sql"
		start_server a1 "$PORT"
		sockets "a-sockets-r$r" --url "$(ws "$PORT")" --pid "${PIDS[a1]}" --users "$W" --sockets "$W" --writers "$W"
		stop a1
	done
	pgbench_run a-pgbench-insert 16 "$OUT/insert.sql"
	start_server a2 "$PORT" DATABASE_WRITE_BATCHES="$W" DATABASE_WRITE_BATCH_SIZE=1
	sockets a-sockets-nobatch --url "$(ws "$PORT")" --pid "${PIDS[a2]}" --users "$W" --sockets "$W" --writers "$W"
	stop a2
fi

# ------------------------------------------------------------------------------------------ (b)
if want b; then
	log "== (b) cross-instance write-to-other-socket latency at 200/s vs raw NOTIFY"
	# Each build's pair of instances runs only for its own runs: four at once would hold ~70
	# Postgres connections on a shared server.
	b_this() {
		start_server b1 "$PORT"
		start_server b2 "$((PORT + 1))"
		sockets "b-sockets-r$r" --url "$(ws "$PORT"),$(ws "$((PORT + 1))")" --pid "${PIDS[b1]},${PIDS[b2]}" \
			--users 10 --sockets 40 --rate 200
		stop b1 b2
	}
	b_base() {
		SERVER_BIN=$BENCH_BASE_BIN SERVER_DB=$BASE_DBURL start_server bbase1 "$((PORT + 4))" REDIS_PREFIX="$PREFIX-base"
		SERVER_BIN=$BENCH_BASE_BIN SERVER_DB=$BASE_DBURL start_server bbase2 "$((PORT + 5))" REDIS_PREFIX="$PREFIX-base"
		sockets "b-base-sockets-r$r" --url "$(ws "$((PORT + 4))"),$(ws "$((PORT + 5))")" --pid "${PIDS[bbase1]},${PIDS[bbase2]}" \
			--users 10 --sockets 40 --rate 200
		stop bbase1 bbase2
	}
	for r in $(seq "$REPEAT"); do
		"$LG" notify --label "b-notify-r$r" --db "$DBURL" --rate 200 --duration "$WIN" --json "$OUT/b-notify-r$r.json" | tee "$OUT/b-notify-r$r.txt" || log "notify baseline failed"
		"$LG" notify --label "b-insert-notify-r$r" --db "$DBURL" --rate 200 --duration "$WIN" --insert --json "$OUT/b-insert-notify-r$r.json" | tee "$OUT/b-insert-notify-r$r.txt" || log "notify baseline failed"
		# tasksync's own create statement and change-log trigger, without the server: what is left
		# between this and b-sockets is the server's share (socket in and out, request path, fan-out).
		"$LG" notify --label "b-task-notify-r$r" --db "$DBURL" --rate 200 --duration "$WIN" --task --json "$OUT/b-task-notify-r$r.json" | tee "$OUT/b-task-notify-r$r.txt" || log "task baseline failed"
		if [[ -z $BASE_DBURL ]]; then
			b_this
		elif ((r % 2)); then # the two builds take turns going first
			b_this
			b_base
		else
			b_base
			b_this
		fi
	done
fi

# ------------------------------------------------------------------------------------------ (c)
if want c; then
	n=$((C_USERS * C_PER_USER))
	log "== (c) broadcast: $n sockets of $C_USERS users vs the bare coder/websocket server"
	for r in $(seq "$REPEAT"); do
		start_server c1 "$PORT"
		sockets "c-sockets-r$r" --url "$(ws "$PORT")" --pid "${PIDS[c1]}" --users "$C_USERS" --sockets "$n" --writers "$C_USERS"
		stop c1
		start_bare cbare "$((PORT + 2))"
		sockets "c-bare-r$r" --url "$(ws "$((PORT + 2))")" --pid "${PIDS[cbare]}" --users "$C_USERS" --sockets "$n" --writers "$C_USERS"
		stop cbare
	done
fi

# ------------------------------------------------------------------------------------------ (d)
if want d; then
	log "== (d) memory per idle socket ($IDLE_MEM) vs the bare library"
	start_server d1 "$PORT"
	sockets d-mem --url "$(ws "$PORT")" --pid "${PIDS[d1]}" --idle "$IDLE_MEM" --sockets 0 --warmup 0 --duration 1s --drain 0s
	stop d1
	start_bare dbare "$((PORT + 2))"
	sockets d-mem-bare --url "$(ws "$((PORT + 2))")" --pid "${PIDS[dbare]}" --idle "$IDLE_MEM" --sockets 0 --warmup 0 --duration 1s --drain 0s
	stop dbare

	log "== (d) $((2 * HOLD_EACH)) idle sockets held by one instance while live traffic flows"
	# Chat turns go to the test model server (OpenAI wire format, an add_task call per turn).
	"$LG" model --addr "127.0.0.1:$((PORT + 3))" --duration 20m >"$OUT/logs/model.log" 2>&1 &
	PIDS[model]=$!
	wait_until 10 port_listening "$((PORT + 3))" || die "the test model server did not start (see $OUT/logs/model.log)"
	start_server d2 "$PORT" OPENAI_BASE_URL="http://127.0.0.1:$((PORT + 3))/v1" OPENAI_API_KEY=bench OPENAI_MODEL=test-model
	rm -f "$OUT/d-stop"
	for h in 1 2; do
		"$LG" sockets --label "d-hold-$h" --secret "$SECRET" --url "$(ws "$PORT")" --pid "${PIDS[d2]}" \
			--idle "$HOLD_EACH" --sockets 0 --warmup 0 --duration 10m --drain 0s --settle 1s --source-ips 4 \
			--dial-concurrency 16 --ready-file "$OUT/d-ready-$h" --stop-file "$OUT/d-stop" \
			--json "$OUT/d-hold-$h.json" >"$OUT/d-hold-$h.txt" 2>&1 &
		PIDS[dhold$h]=$!
		# One after the other: two dialling storms at once only slow each other.
		wait_until 300 started "$OUT/d-ready-$h" "${PIDS[dhold$h]}" || log "idle holder $h is still opening sockets after 300 s"
	done
	sockets d-hold-live --url "$(ws "$PORT")" --pid "${PIDS[d2]}" --users 4 --sockets 8 --rate 200 --chat-rate 1 --chat-users 2
	touch "$OUT/d-stop"
	wait "${PIDS[dhold1]}" "${PIDS[dhold2]}" || log "an idle holder reported an error (see $OUT/d-hold-*.txt)"
	unset "PIDS[dhold1]" "PIDS[dhold2]"
	cat "$OUT/d-hold-1.txt" "$OUT/d-hold-2.txt"
	stop d2 model
fi

# ------------------------------------------------------------------------------------------ (e)
if want e; then
	log "== (e) one user's write-to-socket latency without and with $IDLE_E idle sockets of other users"
	start_server e1 "$PORT"
	e_run() { sockets "$1" --url "$(ws "$PORT")" --pid "${PIDS[e1]}" --users 4 --sockets 8 --rate 200; }
	e_run e-base-r1
	rm -f "$OUT/e-stop"
	"$LG" sockets --label e-idle-holder --secret "$SECRET" --url "$(ws "$PORT")" --pid "${PIDS[e1]}" \
		--idle "$IDLE_E" --sockets 0 --warmup 0 --duration 10m --drain 0s --settle 1s --dial-concurrency 16 \
		--ready-file "$OUT/e-ready" --stop-file "$OUT/e-stop" --json "$OUT/e-idle-holder.json" >"$OUT/e-idle-holder.txt" 2>&1 &
	PIDS[ehold]=$!
	wait_until 300 started "$OUT/e-ready" "${PIDS[ehold]}" || log "the idle holder is still opening sockets after 300 s"
	for r in $(seq "$REPEAT"); do
		e_run "e-idle-r$r"
	done
	touch "$OUT/e-stop"
	wait "${PIDS[ehold]}" || log "the idle holder reported an error (see $OUT/e-idle-holder.txt)"
	unset "PIDS[ehold]"
	e_run e-base-r2
	stop e1
fi

# ------------------------------------------------------------------------------------------ (f)
# The reconnect storm: STORM_SOCKETS sockets of STORM_USERS users on instance A, writes at 200/s over
# REST on instance B, kill -9 A, every socket back on B with since and full-jitter backoff (loadgen
# storm sends the SIGKILL itself, to a process this script started). Each of A, B and the loadgen
# holds every socket as a file descriptor, so the count is capped by the open-files limit.
if want f; then
	STORM_SOCKETS=${BENCH_STORM_SOCKETS:-10000} STORM_USERS=${BENCH_STORM_USERS:-1000}
	[[ $QUICK == 1 ]] && STORM_SOCKETS=${BENCH_STORM_SOCKETS:-1000} STORM_USERS=${BENCH_STORM_USERS:-100}
	if ((FD_LIMIT < STORM_SOCKETS + 200)); then
		STORM_SOCKETS=$((FD_LIMIT - 200))
		log "open files limited to $FD_LIMIT: $STORM_SOCKETS sockets in the storm"
	fi
	log "== (f) reconnect storm: $STORM_SOCKETS sockets of $STORM_USERS users on A, kill -9 A, all back on B with since"
	for r in $(seq "$REPEAT"); do
		start_server fa "$PORT" ${BENCH_STORM_ENV:-}
		start_server fb "$((PORT + 1))" ${BENCH_STORM_ENV:-}
		"$LG" storm --label "f-storm-r$r" --secret "$SECRET" --db "$DBURL" --url-a "$(ws "$PORT")" --url-b "$(ws "$((PORT + 1))")" \
			--kill-pid "${PIDS[fa]}" --users "$STORM_USERS" --sockets "$STORM_SOCKETS" --rate 200 \
			--json "$OUT/f-storm-r$r.json" | tee "$OUT/f-storm-r$r.txt" || log "f-storm-r$r: loadgen reported an error (counted in the table)"
		wait "${PIDS[fa]}" 2>/dev/null || true
		unset "PIDS[fa]"
		log "f-storm-r$r: B logged $(grep -c 'level=ERROR' "$OUT/logs/fb.log" || true) errors and $(grep -c 'level=WARN' "$OUT/logs/fb.log" || true) warnings ($OUT/logs/fb.log)"
		cp "$OUT/logs/fb.log" "$OUT/logs/fb-r$r.log"
		stop fb
	done
fi

# ------------------------------------------------------------------------------------------ redis
if want redis; then
	log "== Redis PUBLISH -> SUBSCRIBE"
	"$LG" redis --label redis --redis "$REDIS_URL" --rate 200 --duration "$WIN" --max-duration 5s --json "$OUT/redis.json" | tee "$OUT/redis.txt" || log "redis baseline failed"
fi

# ------------------------------------------------------------------------------------------ peer
# Centrifugo, the best-known Go realtime server, as the product users would pick instead. Its binary
# comes from CENTRIFUGO_BIN (nothing of it is in this repository). Each Centrifugo gets a generated
# config on a free port: HS256 tokens with the same secret (the loadgen's tokens work on both),
# clients may subscribe and subscribers publish (a writer socket publishes, as a tasksync writer
# socket mutates), channel history (2000, 10 min) with forced recovery, recovery of up to 2000
# publications in one subscribe reply (the default 300 would refuse the 1000 of the resume row),
# Prometheus metrics for heap and goroutines; the memory engine, or Redis (REDIS_URL, a prefix of
# this run's), or the memory engine with the Postgres broker (publications, history and recovery in
# Postgres: tables it creates itself in the scratch database ${DB}_cf, dropped at exit; LISTEN/NOTIFY
# wake-up with one outbox shard, see start_centrifugo). Send queue per socket: 1 MiB on both.
CF_VERSION=""
if want peer && [[ -z ${CENTRIFUGO_BIN:-} ]]; then
	log "== peer: CENTRIFUGO_BIN is not set: skipping the Centrifugo rows (build it from github.com/centrifugal/centrifugo, see README)"
elif want peer; then
	[[ -x $CENTRIFUGO_BIN ]] || die "CENTRIFUGO_BIN=$CENTRIFUGO_BIN is not an executable"
	CF_VERSION=$("$CENTRIFUGO_BIN" version 2>&1 | head -1)
	log "== peer: $CF_VERSION ($CENTRIFUGO_BIN)"
	mkdir -p "$OUT/centrifugo"
	peer_want() { [[ " ${BENCH_PEER:-bc bcpg bcfix mem resume lat latapi latpg} " == *" $1 "* ]]; }
	CF_DBURL=""
	if peer_want resume || peer_want latpg || peer_want bcpg; then
		psql -X -w -q -v ON_ERROR_STOP=1 -d "$DATABASE_ADMIN_URL" -c "CREATE DATABASE ${DB}_cf" </dev/null
		CF_DBURL=$(url_with_db "$DATABASE_ADMIN_URL" "${DB}_cf")
	fi
	# start_centrifugo NAME ENGINE(memory|redis|postgres) [REDIS_PREFIX]: one Centrifugo; sets CF_PORT.
	# postgres: the memory engine (presence) with the Postgres broker. Its outbox workers, one per shard,
	# share one wake-up channel of capacity 1 fed by LISTEN (v6.9.1 internal/pgoutbox/listener.go,
	# pgstreambroker.go): with the default 8 shards a NOTIFY wakes one worker, 1 in 8 the right one, and
	# the others wait out the 100 ms poll (p50 ~20 ms here). One shard: every NOTIFY wakes the worker.
	start_centrifugo() {
		local name=$1 engine=$2 prefix=${3:-$PREFIX-cf-$1} conf engine_json='{"type": "memory"}' broker_json=''
		CF_PORT=$(free_port)
		conf=$OUT/centrifugo/$name.json
		if [[ $engine == redis ]]; then
			engine_json=$(printf '{"type": "redis", "redis": {"address": ["%s"], "prefix": "%s"}}' "$REDIS_URL" "$prefix")
		elif [[ $engine == postgres ]]; then
			broker_json=$(printf ',\n  "broker": {"enabled": true, "type": "postgres", "postgres": {"dsn": "%s", "use_notify": true, "num_shards": 1}}' "$CF_DBURL")
		fi
		printf '%s\n' \
			'{' \
			'  "log": {"level": "warn"},' \
			"  \"http_server\": {\"address\": \"127.0.0.1\", \"port\": $CF_PORT}," \
			"  \"client\": {\"token\": {\"hmac_secret_key\": \"$SECRET\"}, \"recovery_max_publication_limit\": 2000, \"queue_max_size\": 1048576}," \
			"  \"http_api\": {\"key\": \"$SECRET\"}," \
			'  "prometheus": {"enabled": true},' \
			'  "channel": {"without_namespace": {"allow_subscribe_for_client": true, "allow_publish_for_subscriber": true,' \
			'    "history_size": 2000, "history_ttl": "600s", "force_recovery": true}},' \
			"  \"engine\": $engine_json${broker_json}" \
			'}' >"$conf"
		# (env -u: Centrifugo reads CENTRIFUGO_* variables as its own settings and warns about this one)
		env -u CENTRIFUGO_BIN "$CENTRIFUGO_BIN" -c "$conf" >"$OUT/logs/$name.log" 2>&1 &
		PIDS[$name]=$!
		wait_until 30 http_ok "$CF_PORT" /metrics || die "Centrifugo $name did not start (see $OUT/logs/$name.log)"
	}
	cfws() { printf 'ws://127.0.0.1:%s/connection/websocket' "$1"; }
	n=$((C_USERS * C_PER_USER))
	RESUME_ROUNDS=5 RESUME_REPEAT=20 # 100 resumes a run, 5 users
	FIX_RATE=300                      # bcfix: 30,000 deliveries/s with 100 sockets a group
	[[ $QUICK == 1 ]] && RESUME_ROUNDS=2 RESUME_REPEAT=3

	if peer_want bc; then
		log "== peer (broadcast): $n sockets in $C_USERS groups, a closed-loop writer per group: tasksync, Centrifugo memory, Centrifugo Redis"
		for r in $(seq "$REPEAT"); do
			start_server pt "$PORT"
			# ?batch=1, as the SDK connects: Centrifugo's JSON protocol always may join frames.
			sockets "p-bc-tasksync-r$r" --url "$(ws "$PORT")" --pid "${PIDS[pt]}" --users "$C_USERS" --sockets "$n" --writers "$C_USERS" --batch
			stop pt
			engines="memory redis"
			peer_want bcpg && engines+=" postgres"
			for engine in $engines; do
				start_centrifugo "cf-bc-$engine-r$r" "$engine"
				sockets "p-bc-cf${engine/postgres/pg}-r$r" --proto centrifugo --url "$(cfws "$CF_PORT")" --pid "${PIDS[cf-bc-$engine-r$r]}" \
					--users "$C_USERS" --sockets "$n" --writers "$C_USERS"
				stop "cf-bc-$engine-r$r"
			done
		done
	fi

	# The same broadcast at a fixed rate on both sides: at full speed the per-delivery CPU of each
	# process falls as the rate rises (more frames a wake-up, fewer idle wake-ups), so the rows above
	# compare work done at two different rates; here both do the same deliveries a second.
	if peer_want bcfix; then
		log "== peer (broadcast at a fixed rate): $n sockets in $C_USERS groups, $FIX_RATE changes/s in all: tasksync, Centrifugo memory"
		for r in $(seq "$REPEAT"); do
			start_server pt "$PORT"
			sockets "p-fix-tasksync-r$r" --url "$(ws "$PORT")" --pid "${PIDS[pt]}" --users "$C_USERS" --sockets "$n" --writers "$C_USERS" --batch --rate "$FIX_RATE"
			stop pt
			start_centrifugo "cf-fix-memory-r$r" memory
			sockets "p-fix-cfmemory-r$r" --proto centrifugo --url "$(cfws "$CF_PORT")" --pid "${PIDS[cf-fix-memory-r$r]}" \
				--users "$C_USERS" --sockets "$n" --writers "$C_USERS" --rate "$FIX_RATE"
			stop "cf-fix-memory-r$r"
		done
	fi

	if peer_want mem; then
		log "== peer (memory): RSS per idle authenticated socket, $IDLE_MEM sockets (open files: $FD_LIMIT per process)"
		start_server pt "$PORT"
		sockets p-mem-tasksync --url "$(ws "$PORT")" --pid "${PIDS[pt]}" --idle "$IDLE_MEM" --sockets 0 --warmup 0 --duration 1s --drain 0s
		stop pt
		for engine in memory redis; do
			start_centrifugo "cf-mem-$engine" "$engine"
			sockets "p-mem-cf$engine" --proto centrifugo --url "$(cfws "$CF_PORT")" --pid "${PIDS[cf-mem-$engine]}" \
				--idle "$IDLE_MEM" --sockets 0 --warmup 0 --duration 1s --drain 0s
			stop "cf-mem-$engine"
		done
	fi

	resume() { # NAME ARGS...
		local name=$1
		shift
		"$LG" resume --label "$name" --secret "$SECRET" --events 1000 --rounds "$RESUME_ROUNDS" --repeat "$RESUME_REPEAT" --json "$OUT/$name.json" "$@" |
			tee "$OUT/$name.txt" || log "$name: loadgen reported an error (see $OUT/$name.txt)"
	}
	if peer_want resume; then
		log "== peer (resume): a socket that missed 1000 changes comes back, $RESUME_ROUNDS rounds of $RESUME_REPEAT resumes a run"
		for r in $(seq "$REPEAT"); do
			start_server pt "$PORT"
			resume "p-resume-tasksync-r$r" --url "$(ws "$PORT")" --batch
			resume "p-resume-tasksync1-r$r" --url "$(ws "$PORT")"
			stop pt
			for engine in memory redis postgres; do
				start_centrifugo "cf-resume-$engine-r$r" "$engine"
				resume "p-resume-cf${engine/postgres/pg}-r$r" --proto centrifugo --url "$(cfws "$CF_PORT")"
				stop "cf-resume-$engine-r$r"
			done
		done
	fi

	# cf_pair NAME ENGINE: two Centrifugo instances of one cluster (same Redis prefix, or same database);
	# sets CF_P1, CF_P2 and CF_PIDS.
	cf_pair() {
		start_centrifugo "$1-1" "$2" "$PREFIX-$1"
		CF_P1=$CF_PORT
		start_centrifugo "$1-2" "$2" "$PREFIX-$1"
		CF_P2=$CF_PORT CF_PIDS="${PIDS[$1-1]},${PIDS[$1-2]}"
	}
	# cf_lat NAME socket|api: the cross-instance run against the pair, writers publishing from their
	# sockets or through the server API of their instance (POST /api/publish, keep-alive).
	cf_lat() {
		sockets "$1" --proto centrifugo --cf-publish "$2" --cf-api-key "$SECRET" --url "$(cfws "$CF_P1"),$(cfws "$CF_P2")" \
			--pid "$CF_PIDS" --users 10 --sockets 40 --rate 200
	}
	if peer_want lat || peer_want latapi || peer_want latpg; then
		log "== peer (cross-instance): write on one instance, event on the other, 200/s: tasksync (Postgres) vs Centrifugo (Redis engine; Postgres broker)"
		for r in $(seq "$REPEAT"); do
			start_server pt1 "$PORT"
			start_server pt2 "$((PORT + 1))"
			sockets "p-lat-tasksync-r$r" --url "$(ws "$PORT"),$(ws "$((PORT + 1))")" --pid "${PIDS[pt1]},${PIDS[pt2]}" \
				--users 10 --sockets 40 --rate 200
			stop pt1 pt2
			if peer_want lat || peer_want latapi; then
				cf_pair "cf-lat-redis-r$r" redis
				if peer_want lat; then cf_lat "p-lat-cfredis-r$r" socket; fi
				if peer_want latapi; then cf_lat "p-lat-cfredisapi-r$r" api; fi
				stop "cf-lat-redis-r$r-1" "cf-lat-redis-r$r-2"
			fi
			if peer_want latpg; then
				cf_pair "cf-lat-pg-r$r" postgres
				cf_lat "p-lat-cfpg-r$r" socket
				cf_lat "p-lat-cfpgapi-r$r" api
				stop "cf-lat-pg-r$r-1" "cf-lat-pg-r$r-2"
			fi
		done
	fi
fi

# ------------------------------------------------------------------------------------------ go
if want go; then
	log "== Go micro-benchmarks"
	benchtime=1s
	[[ $QUICK == 1 ]] && benchtime=100ms
	TEST_DATABASE_URL=$DATABASE_ADMIN_URL TEST_REDIS_URL=$REDIS_URL \
		go test -run '^$' -bench . -benchmem -benchtime "$benchtime" ./realtime ./tasks | tee "$OUT/go-bench.txt" || log "go test -bench failed"
fi

# ------------------------------------------------------------------------------------------ table
pg_version=$(psql -X -w -A -t -d "$DATABASE_ADMIN_URL" -c 'show server_version' </dev/null 2>/dev/null | cut -d' ' -f1 || true)
redis_version=$(redis-cli -u "$REDIS_URL" info server 2>/dev/null | tr -d '\r' | awk -F: '/^redis_version:/{print $2}' || true)
"$LG" report --dir "$OUT" --out "bench-results/$TS.json" --writers "$W" \
	--pg-version "$pg_version" --redis-version "$redis_version" --peer-version "$CF_VERSION" --load-before "$LOAD_BEFORE" | tee "$OUT/table.md"
log "wrote bench-results/$TS.json and $OUT/"
