#!/usr/bin/env bash
# `make dev`: PostgreSQL + Redis (scripts/services.sh), the tasksync database, a dev secret,
# a fresh build, migrations, a 24 h token for dev-user, then the server in the foreground.
#
# Environment:
#   LISTEN_ADDR       where the server listens (default 127.0.0.1:8080)
#   TASKSYNC_DEV_DB   database name (default tasksync), created on the admin server if missing
#   plus the knobs of scripts/services.sh (DATABASE_ADMIN_URL, REDIS_URL, TASKSYNC_*)
# Files (all under .dev/, gitignored): .dev/secret (HS256 secret, made once, mode 600),
# .dev/bin/server. Delete .dev/secret to rotate the secret (old tokens stop working).
set -euo pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
TASKSYNC_LOG_TAG="make dev"
cd "$TASKSYNC_ROOT"

need_go
need_ca_certs
[[ -d cmd/server ]] || die "cmd/server does not exist in this checkout; nothing to run"

LISTEN_ADDR=${LISTEN_ADDR:-127.0.0.1:8080}
DEV_DB=${TASKSYNC_DEV_DB:-tasksync}
[[ $DEV_DB =~ ^[a-z_][a-z0-9_]*$ ]] || die "TASKSYNC_DEV_DB must be a plain lower-case identifier, got '$DEV_DB'"
[[ $LISTEN_ADDR =~ ^(.*):([0-9]+)$ ]] || die "LISTEN_ADDR must be HOST:PORT, got '$LISTEN_ADDR'"
host=${BASH_REMATCH[1]#[}
host=${host%]}
port=${BASH_REMATCH[2]}
case $host in "" | 0.0.0.0 | :: | "*") host=127.0.0.1 ;; esac
[[ $host == *:* ]] && url_host="[$host]" || url_host=$host
BASE_URL="http://$url_host:$port"

# Fail before building if the port is taken (a previous `make dev` still running?).
# shellcheck disable=SC2016 # $1/$2 expand in the inner bash
if timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$host" "$port" 2>/dev/null; then
	die "something already listens on $host:$port (another 'make dev'?). Stop it, or pick another address: LISTEN_ADDR=127.0.0.1:8081 make dev"
fi

env_lines=$("$TASKSYNC_ROOT/scripts/services.sh" ensure) || die "PostgreSQL/Redis are not available (see above)"
eval "$env_lines"

exists=$(psql -X -w -A -t -v ON_ERROR_STOP=1 -d "$DATABASE_ADMIN_URL" \
	-c "select 1 from pg_database where datname = '$DEV_DB'" </dev/null) ||
	die "cannot query the PostgreSQL server at DATABASE_ADMIN_URL"
if [[ $exists != 1 ]]; then
	log "creating database $DEV_DB"
	psql -X -w -q -v ON_ERROR_STOP=1 -d "$DATABASE_ADMIN_URL" -c "CREATE DATABASE $DEV_DB" </dev/null ||
		die "CREATE DATABASE $DEV_DB failed"
fi

mkdir -p .dev/bin
chmod 700 .dev
if [[ ! -s .dev/secret ]]; then
	log "generating a development secret in .dev/secret"
	(
		umask 077
		# 36 random bytes → 48 base64url characters.
		head -c 36 /dev/urandom | base64 | tr '+/' '-_' | tr -d '\n' >.dev/secret.tmp
		mv .dev/secret.tmp .dev/secret
	)
fi
chmod 600 .dev/secret
secret=$(<.dev/secret)
[[ ${#secret} -ge 32 ]] || die ".dev/secret is shorter than 32 characters; delete it to make a new one"

export DATABASE_URL
DATABASE_URL=$(url_with_db "$DATABASE_ADMIN_URL" "$DEV_DB")
export REDIS_URL AUTH_JWT_SECRET=$secret LISTEN_ADDR

# go build stamps the binary with git metadata and fails when git refuses the repository
# (a checkout owned by another user, e.g. under sudo): build without the stamp then.
build_flags=()
if [[ -e .git ]] && command -v git >/dev/null 2>&1 && ! git rev-parse --git-dir >/dev/null 2>&1; then
	log "git cannot read this repository (owned by another user?); building with -buildvcs=false"
	build_flags=(-buildvcs=false)
fi
log "building .dev/bin/server"
go build "${build_flags[@]}" -o .dev/bin/server ./cmd/server || die "go build ./cmd/server failed"
log "applying migrations to $DEV_DB"
.dev/bin/server migrate || die "'server migrate' failed"
token=$(.dev/bin/server token dev-user --ttl 24h) || die "'server token' failed"
token=${token//[$'\r\n\t ']/}
[[ -n $token ]] || die "'server token' printed no token"

cat <<EOF

==================================================================== tasksync dev
 Board (open in a browser, signed in as dev-user for 24 h):
   $BASE_URL/#token=$token

 Token (HS256, user dev-user, valid 24 h; secret in .dev/secret):
   $token

 In another shell:
   export TOKEN='$token'
   curl -sS -H "Authorization: Bearer \$TOKEN" $BASE_URL/api/dev-user/tasks

 Database: $(redact_url "$DATABASE_URL")
 Redis:    $(redact_url "$REDIS_URL")
 Stop the server with Ctrl-C; stop local PostgreSQL/Redis with 'make services-stop'.
=================================================================================

EOF

exec .dev/bin/server serve
