#!/usr/bin/env bash
# bench/soak.sh — soak with faults: mixed traffic against two stepupd
# instances sharing one Redis (appendonly yes, appendfsync everysec, as in
# docker-compose.yml) for DURATION, while
#   at 1/3: Redis is killed (SIGKILL, a crash) and started again 3 s later
#           on the same append-only file;
#   at 2/3: instance 1 is restarted (SIGTERM, graceful; back 1 s later).
# The bench prints a time series (ops/s by kind, errors by kind, p50/p99,
# each instance's RSS, Redis used_memory) and, at the end, how many of the
# sessions it was told about (a login with a verified ID token) are lost.
#
#   bench/soak.sh [DURATION]     # default 3m; CONCURRENCY (8), USERS (600)
#
# SESSION_IDLE=60s writes session.idle_timeout into the configuration, so
# that sessions expire within the run and Redis memory can be seen to level
# off (memory follows live sessions, not logins); every KEYS_EVERY (30s) the
# keys are then counted by kind ({sess}, {grant}, …) next to used_memory.
# SESSION_ABSOLUTE (with SESSION_IDLE) sets session.absolute_timeout too:
# an online grant lives that long (12h by default), whatever the idle one.
# FAULTS=0 leaves both faults out (a Redis restart rewrites memory and
# would hide the trend); the default, 1, injects them.
#
# Ports 6450-6452 on 127.0.0.1. Every process it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

DUR=${1:-3m}
C=${CONCURRENCY:-8}
USERS=${USERS:-600}
SESSION_IDLE=${SESSION_IDLE:-}
SESSION_ABSOLUTE=${SESSION_ABSOLUTE:-}
FAULTS=${FAULTS:-1}
KEYS_EVERY=${KEYS_EVERY:-30}
RPORT=${RPORT:-6450}
P1=$((RPORT + 1))
P2=$((RPORT + 2))

WORK=$(mktemp -d /tmp/stepup-soak.XXXXXX)
PIDS=()
cleanup() {
	local p
	for f in "$WORK"/*.pid; do [ -s "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM
log() { printf '[soak.sh %s UTC] %s\n' "$(date -u +%T)" "$*" >&2; }
wait_for() {
	local deadline=$((SECONDS + $1)); shift
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -lt $deadline ] || { log "timed out waiting for: $*"; return 1; }
		sleep 0.1
	done
}
secs() { # 3m → 180, 90s → 90
	case $1 in *m) echo $((${1%m} * 60)) ;; *s) echo "${1%s}" ;; *) echo "$1" ;; esac
}

log "building into $WORK"
go build -o "$WORK/stepupd" ./cmd/stepupd
go build -o "$WORK/bench" ./bench

mkdir -p "$WORK/redis"
start_redis() {
	redis-server --bind 127.0.0.1 --port "$RPORT" --dir "$WORK/redis" --save '' \
		--appendonly yes --appendfsync everysec --loglevel warning >>"$WORK/redis.log" 2>&1 &
	echo $! >"$WORK/redis.pid"
	wait_for 20 redis-cli -p "$RPORT" ping
}
start_instance() { # N CONFIG
	"$WORK/stepupd" -config "$2" >>"$WORK/stepupd$1.log" 2>&1 &
	echo $! >"$WORK/stepupd$1.pid"
}
start_redis
"$WORK/bench" -write-config "$WORK/c1" -issuer "http://127.0.0.1:$P1" -redis-url "redis://127.0.0.1:$RPORT/0" -users "$USERS" -alg ES256 ${SESSION_IDLE:+-session-idle "$SESSION_IDLE"} ${SESSION_ABSOLUTE:+-session-absolute "$SESSION_ABSOLUTE"} >&2
mkdir -p "$WORK/c2"
sed "s/^listen: .*/listen: \"127.0.0.1:$P2\"/" "$WORK/c1/stepup.yaml" >"$WORK/c2/stepup.yaml"
start_instance 1 "$WORK/c1/stepup.yaml"
wait_for 120 "$WORK/stepupd" healthcheck "http://127.0.0.1:$P1/readyz"
start_instance 2 "$WORK/c2/stepup.yaml"
wait_for 120 "$WORK/stepupd" healthcheck "http://127.0.0.1:$P2/readyz"
log "redis :$RPORT (pid $(cat "$WORK/redis.pid")), stepupd :$P1 and :$P2; load: $(uptime)"

"$WORK/bench" -secrets "$WORK/c1/bench-secrets.json" -mode soak -duration "$DUR" -concurrency "$C" \
	-backends "127.0.0.1:$P1,127.0.0.1:$P2" -pidfiles "$WORK/stepupd1.pid,$WORK/stepupd2.pid" \
	-redis-mem "127.0.0.1:$RPORT" -sample 5s ${SESSION_IDLE:+-session-idle "$SESSION_IDLE"} ${SESSION_ABSOLUTE:+-session-absolute "$SESSION_ABSOLUTE"} &
BENCH=$!
PIDS+=("$BENCH")

# Keys by kind: the hash tag's prefix and what follows it, e.g. {sess}
# (one per live session) or {sess}:grants; SCAN, so Redis is not blocked.
census() {
	local mem
	mem=$(redis-cli -p "$RPORT" info memory 2>/dev/null | tr -d '\r' | sed -n 's/^used_memory://p')
	printf '[soak.sh %s UTC] keys: used_memory %s B, dbsize %s;' "$(date -u +%T)" "${mem:--}" "$(redis-cli -p "$RPORT" dbsize 2>/dev/null)" >&2
	redis-cli -p "$RPORT" --scan 2>/dev/null |
		sed -E 's/\{([A-Za-z_-]+)[^}]*\}/{\1}/; s/^[^{]*\{/{/' | sort | uniq -c | sort -rn |
		awk '{printf " %s %s", $2, $1} END {print ""}' >&2
}
if [ -n "$SESSION_IDLE" ]; then
	(while kill -0 "$BENCH" 2>/dev/null; do census; sleep "$KEYS_EVERY"; done) &
	PIDS+=("$!")
fi

total=$(secs "$DUR")
if [ "$FAULTS" = 0 ]; then
	log "FAULTS=0: no faults injected"
	rc=0
	wait "$BENCH" || rc=$?
	[ -z "$SESSION_IDLE" ] || census
	log "done: $(uptime); logs in $WORK"
	exit $rc
fi
sleep $((total / 3))
log "FAULT: kill -9 redis-server (pid $(cat "$WORK/redis.pid"))"
kill -9 "$(cat "$WORK/redis.pid")"
sleep 3
start_redis
log "redis-server back (pid $(cat "$WORK/redis.pid")), keys: $(redis-cli -p "$RPORT" dbsize)"

sleep $((total / 3 - 3))
log "FAULT: SIGTERM stepupd instance 1 (pid $(cat "$WORK/stepupd1.pid"))"
kill -TERM "$(cat "$WORK/stepupd1.pid")"
while kill -0 "$(cat "$WORK/stepupd1.pid")" 2>/dev/null; do sleep 0.1; done
sleep 1
start_instance 1 "$WORK/c1/stepup.yaml"
wait_for 60 "$WORK/stepupd" healthcheck "http://127.0.0.1:$P1/readyz"
log "stepupd instance 1 back (pid $(cat "$WORK/stepupd1.pid"))"

rc=0
wait "$BENCH" || rc=$?
log "done: $(uptime); logs in $WORK"
exit $rc
