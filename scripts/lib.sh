# shellcheck shell=bash
# Helpers shared by scripts/*.sh. Sourced, never run.
# Diagnostics always go to stderr: services.sh's stdout is eval'd by its callers.

# shellcheck disable=SC2034 # used by the scripts that source this file
TASKSYNC_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)

log() { printf '%s: %s\n' "${TASKSYNC_LOG_TAG:-tasksync}" "$*" >&2; }

die() {
	printf '%s: error: %s\n' "${TASKSYNC_LOG_TAG:-tasksync}" "$*" >&2
	exit 1
}

is_root() { [[ $(id -u) -eq 0 ]]; }

# apt_install PKG...: as root only, with Debian's apt-get; refreshes the package
# lists and retries once if the first attempt fails (a fresh machine has none).
# Returns non-zero, without printing, when installing is not possible here.
apt_install() {
	is_root || return 1
	[[ ${TASKSYNC_NO_INSTALL:-0} != 1 ]] || return 1
	command -v apt-get >/dev/null 2>&1 || return 1
	log "installing Debian package(s): $* (apt-get, as root)"
	if DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >&2; then
		return 0
	fi
	log "apt-get install failed; running apt-get update and trying again"
	apt-get update >&2 || return 1
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >&2
}

# why_cannot_install: the reason apt_install would refuse, for error messages.
why_cannot_install() {
	if ! is_root; then
		printf 'this is not root, so apt-get cannot be used'
	elif [[ ${TASKSYNC_NO_INSTALL:-0} == 1 ]]; then
		printf 'TASKSYNC_NO_INSTALL=1 forbids apt-get'
	elif ! command -v apt-get >/dev/null 2>&1; then
		printf 'apt-get is not available (not a Debian system?)'
	else
		printf 'apt-get failed (see its output above)'
	fi
}

# need_go: puts Go on PATH (the usual /usr/local/go when PATH lacks it) or stops.
need_go() {
	if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
		PATH=/usr/local/go/bin:$PATH
		export PATH
	fi
	command -v go >/dev/null 2>&1 ||
		die "Go is not installed (looked on PATH and in /usr/local/go/bin). Install the Go version named in go.mod, then re-run."
}

# need_ca_certs: Go downloads modules over HTTPS and trusts the system's CA bundle, which a
# minimal Debian (a container image, say) does not have until ca-certificates is installed.
need_ca_certs() {
	[[ -s /etc/ssl/certs/ca-certificates.crt || -n ${SSL_CERT_FILE:-} ]] && return 0
	apt_install ca-certificates ||
		log "warning: no CA bundle (/etc/ssl/certs/ca-certificates.crt) and $(why_cannot_install); Go module downloads may fail (Debian: apt-get install ca-certificates)"
}

# need_cc: the race detector needs cgo, hence a C compiler.
need_cc() {
	if command -v gcc >/dev/null 2>&1 || command -v cc >/dev/null 2>&1; then
		return 0
	fi
	apt_install gcc libc6-dev ||
		die "no C compiler (gcc), which 'go test -race' needs, and $(why_cannot_install). Install gcc (Debian: apt-get install gcc libc6-dev), then re-run."
}

# url_with_db URL DB: URL with its path (the database name) replaced by DB.
url_with_db() {
	local re='^([a-zA-Z][a-zA-Z0-9+.-]*://[^/?#]*)(/[^?#]*)?(\?[^#]*)?$'
	[[ $1 =~ $re ]] || die "not a postgres:// URL: $1"
	printf '%s/%s%s' "${BASH_REMATCH[1]}" "$2" "${BASH_REMATCH[3]}"
}

# redact_url URL: URL with any password replaced by ***, for logs.
redact_url() {
	local re='^([^:/]+://[^:/@]*:)[^@]*(@.*)$'
	if [[ $1 =~ $re ]]; then
		printf '%s***%s' "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"
	else
		printf '%s' "$1"
	fi
}

# shell_quote VALUE: VALUE single-quoted for eval.
shell_quote() {
	local q="'\\''"
	printf "'%s'" "${1//\'/$q}"
}

# wait_for SECONDS CMD...: polls CMD until it succeeds or SECONDS have passed.
wait_for() {
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		((SECONDS < end)) || return 1
		sleep 0.2
	done
}

# http_ok PORT PATH: a plain HTTP/1.0 GET answered with 200.
http_ok() {
	local status
	exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
	printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&3
	IFS= read -r -t 2 status <&3 || true
	exec 3<&-
	[[ $status == *" 200 "* ]]
}

# wait_until SECONDS CMD...: wait_for with CMD's complaints (a refused connection) silenced, polling
# every 0.1 s: for servers being started.
wait_until() {
	local end=$((SECONDS + $1))
	shift
	until "$@" 2>/dev/null; do
		((SECONDS < end)) || return 1
		sleep 0.1
	done
}

# pg_newest_bindir: the bin directory (initdb, pg_ctl) of the newest PostgreSQL installed under
# /usr/lib/postgresql (Debian's layout); prints nothing when there is none.
pg_newest_bindir() {
	local d
	# sort -V: 9 < 10 < 15
	while IFS= read -r d; do
		if [[ -x $d/initdb && -x $d/pg_ctl ]]; then
			printf '%s' "$d"
			return 0
		fi
	done < <(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V -r)
}

# port_free PORT: nothing accepts connections on 127.0.0.1:PORT.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port: a loopback port that nothing listens on now, from 20000 up to the kernel's ephemeral
# range (ip_local_port_range, 32768 by default; 20000-39999 if that range starts lower). Below
# it, no outgoing connection can be given the port between this check and the server's bind: a
# Centrifugo of the bench once failed with "address already in use" on a port from 32768-39999
# right after the load generator's sockets.
free_port() {
	local p i lo top
	read -r lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || lo=32768
	top=$((lo > 21000 ? lo : 40000))
	for ((i = 0; i < 100; i++)); do
		p=$((20000 + RANDOM % (top - 20000)))
		if port_free "$p"; then
			printf '%s' "$p"
			return 0
		fi
	done
	die "found no free port in 20000-$((top - 1)) after 100 tries"
}
