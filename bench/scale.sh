#!/usr/bin/env bash
# bench/scale.sh — horizontal scaling on this machine: flows/s of the sso
# and login modes with 1, 2 and 4 stepupd instances, on one Redis and on a
# 3-primary Redis Cluster (redis-cli --cluster create). The bench spreads
# its connections over the instances (-backends). Everything — instances,
# Redis, the bench — shares this machine's cores: read the figures as
# "what N processes on the same cores give", not as N machines.
#
#   bench/scale.sh [DURATION]    # default 10s per mode; CONCURRENCY (32), USERS (1000: the stepup mode spends one user per TOTP step)
#
# MODES (default "sso,stepup,login") are measured in each row; the
# "server CPU ms/op" column sums every instance's CPU and every Redis
# node's (as bench/run.sh's does), so it is the cost of one operation
# whatever the number of instances, and its notes split it per process
# (the instances, then the Redis nodes): the premise of the capacity model
# in docs/benchmarks.md is that it stays flat from 1 to 4 instances.
# PROCS sets GOMAXPROCS for every instance ("auto": the machine's cores
# divided by the instances, at least 1 — N processes on the same cores then
# use as many Ps as one, as N machines of cores/N would; empty: Go's
# default, every instance schedules on every core). RATES (e.g.
# "sso=150 stepup=25 login=2") paces each listed mode at that many
# operations per second PER INSTANCE (the bench's -rate, times the
# instances): every instance then carries the same load in every row, as
# it would if each instance had a machine of its own; a mode not listed
# runs closed-loop (as fast as the workers go).
#
# Ports 6460-6479 on 127.0.0.1. Every process it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

DUR=${1:-10s}
C=${CONCURRENCY:-32}
USERS=${USERS:-1000}
COUNTS=${COUNTS:-"1 2 4"}
TOPOLOGIES=${TOPOLOGIES:-"single cluster"}
MODES=${MODES:-sso,stepup,login}
PROCS=${PROCS:-}
RATES=${RATES:-}
BASE=6460

WORK=$(mktemp -d /tmp/stepup-scale.XXXXXX)
ROWS=$WORK/rows.md
cleanup() {
	for f in "$WORK"/*.pid; do [ -s "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM
log() { printf '[scale.sh %s UTC] %s\n' "$(date -u +%T)" "$*" >&2; }
wait_for() {
	local deadline=$((SECONDS + $1)); shift
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -lt $deadline ] || { log "timed out waiting for: $*"; return 1; }
		sleep 0.1
	done
}
stop_pidfiles() { # FILE… — SIGTERM, wait, forget
	local f p
	for f in "$@"; do
		[ -s "$f" ] || continue
		p=$(cat "$f")
		kill "$p" 2>/dev/null || true
		while kill -0 "$p" 2>/dev/null; do sleep 0.1; done
		rm -f "$f"
	done
}

log "building into $WORK"
go build -o "$WORK/stepupd" ./cmd/stepupd
go build -o "$WORK/bench" ./bench
"$WORK/bench" -md-header >"$ROWS"

redis_node() { # PORT [cluster args…]
	local port=$1; shift
	mkdir -p "$WORK/redis-$port"
	redis-server --bind 127.0.0.1 --port "$port" --dir "$WORK/redis-$port" --save '' \
		--appendonly yes --appendfsync everysec --loglevel warning "$@" >>"$WORK/redis-$port.log" 2>&1 &
	echo $! >"$WORK/redis-$port.pid"
	wait_for 20 redis-cli -p "$port" ping
}

for topo in $TOPOLOGIES; do
	case $topo in
	single)
		redis_node $BASE
		redisopt=(-redis-url "redis://127.0.0.1:$BASE/0")
		countopt=(-redis "127.0.0.1:$BASE")
		;;
	cluster)
		addrs=()
		for i in 0 1 2; do
			p=$((BASE + 1 + 2 * i))
			redis_node "$p" --cluster-enabled yes --cluster-config-file nodes.conf --cluster-port $((p + 1)) --cluster-node-timeout 10000
			addrs+=("127.0.0.1:$p")
		done
		redis-cli --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes >"$WORK/cluster-create.log"
		wait_for 30 sh -c "redis-cli -p $((BASE + 1)) cluster info | grep -q cluster_state:ok"
		redisopt=(-redis-addrs "$(IFS=,; echo "${addrs[*]}")")
		countopt=()
		;;
	esac
	for n in $COUNTS; do
		dir=$WORK/$topo-$n
		front=$((BASE + 10))
		"$WORK/bench" -write-config "$dir" -issuer "http://127.0.0.1:$front" "${redisopt[@]}" -users "$USERS" -alg ES256 >&2
		backends=()
		pids=()
		procs=$PROCS
		if [ "$procs" = auto ]; then procs=$(($(nproc) / n)); [ "$procs" -ge 1 ] || procs=1; fi
		for i in $(seq 1 "$n"); do
			port=$((front + i - 1))
			sed "s/^listen: .*/listen: \"127.0.0.1:$port\"/" "$dir/stepup.yaml" >"$dir/stepup-$i.yaml"
			GOMAXPROCS=${procs:-$(nproc)} "$WORK/stepupd" -config "$dir/stepup-$i.yaml" >"$dir/stepupd-$i.log" 2>&1 &
			echo $! >"$WORK/stepupd-$i.pid"
			pids+=("$!")
			backends+=("127.0.0.1:$port")
		done
		for b in "${backends[@]}"; do wait_for 120 "$WORK/stepupd" healthcheck "http://$b/readyz"; done
		# Each instance verifies the client's hashed secret (argon2id) once
		# and caches it; warm them all up, untimed, so the sso figure is
		# not the 503 "busy" of the first seconds.
		"$WORK/bench" -secrets "$dir/bench-secrets.json" -mode cc -duration 2s -concurrency $((2 * n)) \
			-backends "$(IFS=,; echo "${backends[*]}")" >/dev/null 2>&1 || true
		sleep 1
		log "$topo, $n instance(s), GOMAXPROCS ${procs:-default}; load: $(uptime)"
		for mode in ${MODES//,/ }; do
			rateopt=()
			for kv in $RATES; do
				[ "${kv%%=*}" = "$mode" ] && rateopt=(-rate "$((${kv#*=} * n))")
			done
			"$WORK/bench" -secrets "$dir/bench-secrets.json" -mode "$mode" -duration "$DUR" -concurrency "$C" \
				-backends "$(IFS=,; echo "${backends[*]}")" -label "$topo Redis, $n stepupd${procs:+, GOMAXPROCS $procs}${rateopt[1]:+, ${rateopt[1]}/s}" -md "$ROWS" \
				"${countopt[@]}" "${rateopt[@]}" -pid "$(IFS=,; echo "${pids[*]}"),$(cat "$WORK"/redis-*.pid | paste -sd,)"
		done
		echo "| load average after: $(cut -d' ' -f1-3 /proc/loadavg) |" >>"$ROWS"
		stop_pidfiles "$WORK"/stepupd-*.pid
	done
	stop_pidfiles "$WORK"/redis-*.pid
	rm -rf "$WORK"/redis-*
done
cat "$ROWS"
