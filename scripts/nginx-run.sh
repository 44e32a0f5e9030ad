#!/usr/bin/env bash
# `make scale-demo`: three tasksync instances behind Debian's nginx (WebSocket upgrade, round robin,
# no sticky sessions); sockets and writes go through nginx; one instance is killed with kill -9; the
# sockets it held reconnect through nginx (to the two left) with ?since= and full-jitter backoff,
# and every socket's events are checked against the change log: nothing missed, nothing doubled.
# docs/SCALING.md records a run.
#
#   scripts/nginx-run.sh                       # 3,000 sockets of 300 users, 200 writes/s (~1 minute)
#   SCALE_SOCKETS=6000 SCALE_USERS=600 scripts/nginx-run.sh
#
# nginx comes from Debian's package (apt-get install nginx-light when missing and root). Its config
# is generated into the run's directory and nginx runs with -p/-c there, as this user: no system file
# is touched. Loopback only. Output: bench-results/scale-<UTC time>/ (nginx.conf, logs, the
# loadgen's text and JSON).
#
# Knobs: SCALE_SOCKETS (3000), SCALE_USERS (300), SCALE_RATE (200 creates/s over REST through nginx),
# SCALE_PORT_BASE (18600), and those of scripts/services.sh.
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
TASKSYNC_LOG_TAG=scale
cd "$TASKSYNC_ROOT"
need_go

SOCKETS=${SCALE_SOCKETS:-3000}
USERS=${SCALE_USERS:-300}
RATE=${SCALE_RATE:-200}
PORT=${SCALE_PORT_BASE:-18600}
[[ $SOCKETS =~ ^[0-9]+$ && $USERS =~ ^[0-9]+$ ]] && ((USERS >= 1 && SOCKETS >= USERS)) ||
	die "SCALE_SOCKETS and SCALE_USERS must be whole numbers, SCALE_SOCKETS >= SCALE_USERS >= 1"

NGINX=$(command -v nginx || true)
[[ -z $NGINX && -x /usr/sbin/nginx ]] && NGINX=/usr/sbin/nginx
if [[ -z $NGINX ]]; then
	apt_install nginx-light || apt_install nginx || die "nginx is missing and $(why_cannot_install) (Debian: apt-get install nginx-light)"
	NGINX=$(command -v nginx || echo /usr/sbin/nginx)
fi

env_lines=$("$TASKSYNC_ROOT/scripts/services.sh" ensure) || die "PostgreSQL/Redis are not available (see above)"
eval "$env_lines"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
FD_LIMIT=$(ulimit -n)
((SOCKETS + 200 <= FD_LIMIT)) || die "open files limited to $FD_LIMIT: lower SCALE_SOCKETS"

TS=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$TASKSYNC_ROOT/bench-results/scale-$TS
mkdir -p "$OUT/logs" "$OUT/bin" "$OUT/nginx"
log "results in $OUT (load average now: $(cut -d' ' -f1-3 /proc/loadavg))"
go build -o "$OUT/bin/server" ./cmd/server
go build -o "$OUT/bin/loadgen" ./cmd/loadgen

DB=scale_$(printf '%s' "$TS" | tr 'A-Z' 'a-z')
psql -X -w -q -v ON_ERROR_STOP=1 -d "$DATABASE_ADMIN_URL" -c "CREATE DATABASE $DB" </dev/null
DBURL=$(url_with_db "$DATABASE_ADMIN_URL" "$DB")
PREFIX=scale-$TS
SECRET=$(head -c 36 /dev/urandom | base64 | tr '+/' '-_' | tr -d '\n')

declare -A PIDS=()
cleanup() {
	local name
	for name in "${!PIDS[@]}"; do kill "${PIDS[$name]}" 2>/dev/null || true; done
	for name in "${!PIDS[@]}"; do wait "${PIDS[$name]}" 2>/dev/null || true; done
	psql -X -w -q -d "$DATABASE_ADMIN_URL" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" </dev/null >/dev/null 2>&1 || true
	redis-cli -u "$REDIS_URL" --scan --pattern "$PREFIX*" 2>/dev/null | xargs -r redis-cli -u "$REDIS_URL" del >/dev/null 2>&1 || true
}
trap cleanup EXIT

ready() { # PORT: GET /readyz answers 200
	local status
	exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
	printf 'GET /readyz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
	IFS= read -r -t 2 status <&3 || true
	exec 3<&-
	[[ $status == *" 200 "* ]]
}
until_ok() { # SECONDS CMD...
	local end=$((SECONDS + $1))
	shift
	until "$@" 2>/dev/null; do
		((SECONDS < end)) || return 1
		sleep 0.1
	done
}

DATABASE_URL=$DBURL AUTH_JWT_SECRET=$SECRET "$OUT/bin/server" migrate >"$OUT/logs/migrate.log" 2>&1 ||
	die "migrate failed (see $OUT/logs/migrate.log)"

# Three instances, as scripts/dev.sh configures one, with the socket rate limits raised for load.
upstreams=""
for i in 1 2 3; do
	port=$((PORT + i))
	port_free "$port" || die "port $port is taken; set SCALE_PORT_BASE"
	env DATABASE_URL="$DBURL" REDIS_URL="$REDIS_URL" REDIS_PREFIX="$PREFIX" LISTEN_ADDR="127.0.0.1:$port" \
		AUTH_JWT_SECRET="$SECRET" AUTO_MIGRATE=false LOG_LEVEL=warn INSTANCE_ID="i$i" \
		WS_FRAME_RATE=100000 WS_FRAME_BURST=100000 \
		"$OUT/bin/server" serve >"$OUT/logs/i$i.log" 2>&1 &
	PIDS[i$i]=$!
	upstreams+="        server 127.0.0.1:$port max_fails=1 fail_timeout=10s;"$'\n'
done
for i in 1 2 3; do
	until_ok 30 ready $((PORT + i)) || die "instance i$i did not become ready (see $OUT/logs/i$i.log)"
done

# nginx: round robin over the three (no ip_hash, no sticky cookie), HTTP/1.1 upstream with the
# Upgrade/Connection headers passed on for /ws, long read timeouts for idle sockets; a connection
# refused by a dead instance is retried on the next one (proxy_next_upstream error, the default),
# a POST whose instance died mid-request is not (nginx does not retry non-idempotent requests):
# the client sends it again under its Idempotency-Key.
NPORT=$PORT
port_free "$NPORT" || die "port $NPORT is taken; set SCALE_PORT_BASE"
user_line=""
is_root && user_line="user root root;"
cat >"$OUT/nginx/nginx.conf" <<EOF
# generated by scripts/nginx-run.sh for one run; nginx -p $OUT/nginx -c nginx.conf
$user_line
worker_processes 1;
worker_rlimit_nofile $FD_LIMIT;
pid $OUT/nginx/nginx.pid;
error_log $OUT/logs/nginx-error.log warn;
events { worker_connections $(((FD_LIMIT - 100) / 2)); }
http {
    access_log off;
    client_body_temp_path $OUT/nginx/client_body;
    proxy_temp_path $OUT/nginx/proxy;
    fastcgi_temp_path $OUT/nginx/fastcgi;
    uwsgi_temp_path $OUT/nginx/uwsgi;
    scgi_temp_path $OUT/nginx/scgi;
    map \$http_upgrade \$connection_upgrade { default upgrade; '' close; }
    upstream tasksync {
$upstreams        keepalive 32;
    }
    server {
        listen 127.0.0.1:$NPORT;
        location /ws {
            proxy_pass http://tasksync;
            proxy_http_version 1.1;
            proxy_set_header Upgrade \$http_upgrade;
            proxy_set_header Connection \$connection_upgrade;
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$remote_addr;
            proxy_connect_timeout 2s;
            proxy_read_timeout 1h;
            proxy_send_timeout 1h;
        }
        location / {
            proxy_pass http://tasksync;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$remote_addr;
            proxy_connect_timeout 2s;
        }
    }
}
EOF
"$NGINX" -t -p "$OUT/nginx" -c nginx.conf >"$OUT/logs/nginx-t.log" 2>&1 || die "nginx -t failed: $(cat "$OUT/logs/nginx-t.log")"
"$NGINX" -p "$OUT/nginx" -c nginx.conf -g 'daemon off;' >"$OUT/logs/nginx.log" 2>&1 &
PIDS[nginx]=$!
until_ok 10 ready "$NPORT" || die "nginx did not answer (see $OUT/logs/nginx-error.log)"
NGINX_VERSION=$("$NGINX" -v 2>&1)
log "$NGINX_VERSION on 127.0.0.1:$NPORT in front of instances i1 i2 i3 (ports $((PORT + 1))-$((PORT + 3)))"

# The loadgen: SOCKETS sockets through nginx, writes through nginx, kill -9 of instance i1 (a pid of
# this script's), reconnects through nginx with since; --failover: only the sockets i1 held drop.
log "$SOCKETS sockets of $USERS users through nginx, $RATE writes/s through nginx, then kill -9 i1"
rc=0
"$OUT/bin/loadgen" storm --label scale --failover --secret "$SECRET" --db "$DBURL" \
	--url-a "ws://127.0.0.1:$NPORT/ws" --url-b "ws://127.0.0.1:$NPORT/ws" --kill-pid "${PIDS[i1]}" \
	--users "$USERS" --sockets "$SOCKETS" --rate "$RATE" --dial-concurrency 32 \
	--json "$OUT/scale.json" | tee "$OUT/scale.txt" || rc=$?
wait "${PIDS[i1]}" 2>/dev/null || true
unset "PIDS[i1]"
for i in 2 3; do
	log "instance i$i logged $(grep -c 'level=ERROR' "$OUT/logs/i$i.log" || true) errors"
done
log "$NGINX_VERSION; config: $OUT/nginx/nginx.conf; nginx errors: $(grep -c '\[error\]' "$OUT/logs/nginx-error.log" || true) lines (upstream refused/reset after the kill)"
if ((rc != 0)); then
	die "the run found a problem (see above and $OUT/scale.json)"
fi
log "nothing missed, nothing doubled; wrote $OUT/"
