#!/usr/bin/env bash
# bench/floor/compare.sh — the floor (bench/floor) and stepupd, alternately,
# under the same load tool, each on a fresh private redis-server configured
# as bench/run.sh configures it (appendonly yes, everysec); server CPU =
# the server + its redis-server (/proc utime+stime, the bench's -pid).
#
#   bench/floor/compare.sh [DURATION]     # default 6s per mode
#
# Environment: ROUNDS (default 3), USERS (default 400: the step-up pool;
# stepupd's untimed set-up hashes each sign-in with argon2id), CONCURRENCY
# (default 32, as run.sh), MODES (default "discovery cc sso stepup"),
# STEPUPD_BIN (default: a build of this tree), KINDS (default "stepupd
# floor"; "floor-fold" is the floor with -fold: the step-up in 3 requests
# and 6 round trips; "floor-rt3" with -rt3: 3 requests, 3 round trips, for
# MODES=stepup only; "before" is stepupd built as BEFORE_BIN, so that
# two stepupd builds alternate in the same rounds). Every process it starts is
# stopped on exit; the rows are printed at the end (markdown, bench -md).
set -euo pipefail
cd "$(dirname "$0")/../.."

DUR=${1:-6s}
ROUNDS=${ROUNDS:-3}
USERS=${USERS:-400}
C=${CONCURRENCY:-32}
MODES=${MODES:-"discovery cc sso stepup"}
KINDS=${KINDS:-"stepupd floor"}
WORK=$(mktemp -d /tmp/stepup-floor.XXXXXX)
ROWS=$WORK/rows.md
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM
log() { printf '[floor %s] %s\n' "$(date -u +%T)" "$*" >&2; }
wait_for() {
	local deadline=$((SECONDS + $1)); shift
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -lt $deadline ] || { log "timed out waiting for: $*"; return 1; }
		sleep 0.1
	done
}

go build -o "$WORK/bench" ./bench
go build -o "$WORK/floor" ./bench/floor
STEPUPD_BIN=${STEPUPD_BIN:-}
if [ -z "$STEPUPD_BIN" ]; then
	go build -o "$WORK/stepupd" ./cmd/stepupd
	STEPUPD_BIN=$WORK/stepupd
fi
B=$WORK/bench
case " $KINDS " in *" before "*) [ -x "${BEFORE_BIN:-}" ] || { log "KINDS has before: set BEFORE_BIN to a stepupd binary"; exit 2; } ;; esac
REV=$(git rev-parse --short HEAD)
"$B" -md-header >"$ROWS"

# one KIND ROUND — KIND is stepupd, before, floor, floor-fold or floor-rt3
one() {
	local kind=$1 round=$2 dir=$WORK/$1-$2 port rport rpid spid
	mkdir -p "$dir"
	port=$("$B" -free-port)
	rport=$("$B" -free-port)
	redis-server --bind 127.0.0.1 --port "$rport" --protected-mode yes --dir "$dir" \
		--save '' --appendonly yes --appendfsync everysec --loglevel warning >"$dir/redis.log" 2>&1 &
	rpid=$!
	PIDS+=("$rpid")
	wait_for 10 redis-cli -p "$rport" ping
	"$B" -write-config "$dir" -issuer "http://127.0.0.1:$port" -redis-url "redis://127.0.0.1:$rport/0" \
		-users "$USERS" -id-token-alg ES256 >/dev/null
	if [ "$kind" = before ]; then
		"$BEFORE_BIN" -config "$dir/stepup.yaml" >"$dir/stepupd.log" 2>&1 &
	elif [ "$kind" != stepupd ]; then
		"$WORK/floor" -secrets "$dir/bench-secrets.json" -redis "127.0.0.1:$rport" -db "$dir/floor.db" \
			-fold="$([ "$kind" = floor-fold ] && echo true || echo false)" \
			-rt3="$([ "$kind" = floor-rt3 ] && echo true || echo false)" 2>"$dir/audit.log" &
	else
		"$STEPUPD_BIN" -config "$dir/stepup.yaml" >"$dir/stepupd.log" 2>&1 &
	fi
	spid=$!
	PIDS+=("$spid")
	wait_for 120 curl -fsS "http://127.0.0.1:$port/.well-known/openid-configuration"
	sleep 1
	log "$kind round $round: load average $(cut -d' ' -f1-3 /proc/loadavg)"
	"$B" -secrets "$dir/bench-secrets.json" -duration "$DUR" -concurrency "$C" -pid "$spid,$rpid" \
		-redis "127.0.0.1:$rport" -md "$ROWS" -label "$kind r$round ($(date -u +%H:%M:%S), load $(cut -d' ' -f1 /proc/loadavg))" \
		-mode "$(echo "$MODES" | tr ' ' ',')" >"$dir/bench.out" 2>&1 || { cat "$dir/bench.out" >&2; return 1; }
	kill "$spid" "$rpid" 2>/dev/null || true
	wait "$spid" "$rpid" 2>/dev/null || true
	PIDS=()
}

log "stepup $REV, stepupd $STEPUPD_BIN; $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq 1 "$ROUNDS"); do
	# Alternate which goes first, so none always runs in another's wake.
	order=$KINDS
	if [ $((r % 2)) = 0 ]; then order=$(echo "$KINDS" | tr ' ' '\n' | tac | tr '\n' ' '); fi
	for k in $order; do one "$k" "$r"; done
done
cat "$ROWS"
log "work dir $WORK (bench.out per run has the per-process split)"
