#!/usr/bin/env bash
# Runs the README's two-terminal wscat recipe for real: two wscat sessions as the same
# user against a freshly started server; the task created in the second must show up in
# the first. Called by scripts/test.sh (needs DATABASE_ADMIN_URL and REDIS_URL from
# scripts/services.sh) and usable alone: eval "$(scripts/services.sh ensure)"; scripts/wscat-recipe.sh
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
TASKSYNC_LOG_TAG="wscat recipe"
cd "$TASKSYNC_ROOT"
need_go
[[ -n ${DATABASE_ADMIN_URL:-} && -n ${REDIS_URL:-} ]] || die "DATABASE_ADMIN_URL and REDIS_URL are required (eval \"\$(scripts/services.sh ensure)\")"
if ! command -v npx >/dev/null 2>&1; then
	apt_install nodejs npm || die "wscat needs Node.js and npm, and $(why_cannot_install). Install them (Debian: apt-get install nodejs npm), then re-run."
fi

WSCAT=(npx --yes wscat@6.1.0) # the version the README names
work=$(mktemp -d)
db="tasksync_recipe_$$"
server_pid=
cleanup() {
	[[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
	psql -X -w -q -d "$DATABASE_ADMIN_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" </dev/null >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

psql -X -w -q -v ON_ERROR_STOP=1 -d "$DATABASE_ADMIN_URL" -c "CREATE DATABASE $db" </dev/null
go build -o "$work/server" ./cmd/server
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
	echo $((20000 + RANDOM % 20000)))
export DATABASE_URL
DATABASE_URL=$(url_with_db "$DATABASE_ADMIN_URL" "$db")
export AUTH_JWT_SECRET REDIS_PREFIX="tasksync-recipe-$$" LISTEN_ADDR="127.0.0.1:$port" LOG_LEVEL=warn
AUTH_JWT_SECRET=$(head -c 36 /dev/urandom | base64 | tr -d '\n')
"$work/server" serve >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 300); do
	curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
	kill -0 "$server_pid" 2>/dev/null || die "the server exited: $(cat "$work/server.log")"
	sleep 0.1
done
curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null || die "the server did not become ready"

# --- the recipe, as in the README -------------------------------------------------
TOKEN=$("$work/server" token alice --ttl 10m)
WS="ws://127.0.0.1:$port/ws"
# Terminal 1 listens. (wscat leaves at once when stdin is at EOF: keep it open.)
"${WSCAT[@]}" -c "$WS" -H "Authorization: Bearer $TOKEN" -w 40 < <(sleep 42) >"$work/t1.out" 2>"$work/t1.err" &
t1=$!
for _ in $(seq 1 600); do
	grep -q '"type":"hello"' "$work/t1.out" 2>/dev/null && break
	kill -0 "$t1" 2>/dev/null || die "terminal 1 (wscat) exited: $(cat "$work/t1.err")"
	sleep 0.1
done
grep -q '"type":"hello"' "$work/t1.out" || die "terminal 1 never got its hello frame: $(cat "$work/t1.err")"
# Terminal 2 creates a task. (-w: how long wscat stays after sending; generous, since npx
# itself can take seconds to start on a busy machine.)
"${WSCAT[@]}" -c "$WS" -H "Authorization: Bearer $TOKEN" \
	-x '{"type":"task.create","id":1,"task":{"title":"Hello from terminal 2"}}' -w 8 < <(sleep 10) >"$work/t2.out" 2>"$work/t2.err"
# ------------------------------------------------------------------------------------

grep -q '"type":"reply","id":1,"re":"task.create"' "$work/t2.out" || die "terminal 2 got no reply to task.create: $(cat "$work/t2.out" "$work/t2.err")"
for _ in $(seq 1 100); do
	grep -q '"type":"task.created".*Hello from terminal 2' "$work/t1.out" && break
	sleep 0.1
done
grep -q '"type":"task.created".*Hello from terminal 2' "$work/t1.out" || die "terminal 1 did not see the task: $(cat "$work/t1.out")"
kill "$t1" 2>/dev/null || true
# A bad token is refused at the upgrade, as the README says. wscat prints the 401 on stderr.
# Its exit status is not checked: -w also bounds the wait for the server's answer, and when
# it runs out first (npx starting slowly on a busy machine) wscat exits 0 having printed
# nothing; hence the generous -w.
"${WSCAT[@]}" -c "$WS" -H "Authorization: Bearer nonsense" -w 8 < <(sleep 10) >"$work/bad.out" 2>"$work/bad.err" || true
if grep -q '"type":"hello"' "$work/bad.out"; then
	die "a bad token was not refused: it got a hello"
fi
grep -q '401' "$work/bad.err" || die "a bad token did not get 401: $(cat "$work/bad.out" "$work/bad.err")"
log "ok: terminal 1 saw the task terminal 2 created; a bad token got 401"
