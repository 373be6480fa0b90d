#!/usr/bin/env bash
# bench/run.sh — benchmark stepupd (ES256 and RS256, real Redis) and the
# zitadel/oidc v3 example server side by side, all on 127.0.0.1, and print
# a markdown table plus stepupd's RSS and Redis memory per session.
#
#   bench/run.sh [DURATION]          # default 10s per mode
#
# Environment: USERS (stepup users = step-up pool size, default 1500),
# CONCURRENCY (default 32), LOGIN_CONCURRENCY (default 8), ALGS (default
# "ES256 RS256": the ID token algorithm of the bench client; the current
# build signs access tokens with ES256 whatever it is, and its "RS256" is
# a client that registers nothing, OIDC's default, "ES256" one that
# registers id_token_signed_response_alg: ES256; BEFORE_BIN, from before
# issue 18, gets keys.algorithm ALG, which signed every token with ALG),
# MODES (default "discovery jwks cc login sso stepup": the stepupd modes
# to run; e.g. MODES=sso for the SSO flow alone, without the step-up's
# minute of password sign-ins to set up),
# ZITADEL=0 to skip the zitadel example, OVERLOAD=0 to skip
# the extra login run at CONCURRENCY (which shows stepupd shedding load).
# DBS (default "sqlite"): the account databases to measure the current
# build with, "sqlite" (a file beside the config) and/or "postgres" (a
# private PostgreSQL server started here, like .ci/run; its CPU — the
# postmaster and every backend — counts as server CPU). BEFORE_BIN: a
# stepupd binary built from an older commit, measured first in the same
# session with a config without a database section (accounts in Redis,
# as before issue 14; BEFORE_DB=sqlite gives it a SQLite file, for a
# binary from after issue 14 such as f51beb0); BEFORE_REV names it in the
# rows (e.g. 7c30706):
#   git worktree add /tmp/before 7c30706 && (cd /tmp/before && go build -o /tmp/stepupd-before ./cmd/stepupd)
#   BEFORE_BIN=/tmp/stepupd-before BEFORE_REV=7c30706 DBS="sqlite postgres" bench/run.sh
#   BEFORE_BIN=/tmp/stepupd-f51beb0 BEFORE_REV=f51beb0 BEFORE_DB=sqlite ZITADEL=0 OVERLOAD=0 bench/run.sh
# Every process it starts is stopped on exit; logs stay in the work dir.
set -euo pipefail
cd "$(dirname "$0")/.."

DUR=${1:-10s}
USERS=${USERS:-1500}
C=${CONCURRENCY:-32}
LC=${LOGIN_CONCURRENCY:-8}
ALGS=${ALGS:-"ES256 RS256"}
ZITADEL=${ZITADEL:-1}
OVERLOAD=${OVERLOAD:-1}
DBS=${DBS:-sqlite}
BEFORE_BIN=${BEFORE_BIN:-}
BEFORE_REV=${BEFORE_REV:-before}
BEFORE_DB=${BEFORE_DB:-none}
MODES=${MODES:-"discovery jwks cc login sso stepup"}
want() { case " $MODES " in *" $1 "*) return 0 ;; esac; return 1; }

WORK=$(mktemp -d /tmp/stepup-bench.XXXXXX)
ROWS=$WORK/rows.md
MEM=$WORK/memory.md
LOADS=$WORK/loads.md
PIDS=() # processes started here and still running
cleanup() {
	local p
	# The zitadel example runs under a helper shell; its pid is in a file.
	if [ -s "$WORK/zitadel.pid" ]; then kill "$(cat "$WORK/zitadel.pid")" 2>/dev/null || true; fi
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	if [ -n "$PGDIR" ]; then
		$AS_PG "$PGBIN/pg_ctl" -D "$PGDIR/data" -m immediate -w stop >/dev/null 2>&1 || true
		rm -rf "$PGDIR"
	fi
}
PGDIR="" PGBIN="" AS_PG="" PGPORT="" PGPID=""
# stop PID… — end processes started here and forget them, so the exit trap
# can never signal a recycled pid.
stop() {
	local p q keep=()
	kill "$@" 2>/dev/null || true
	for p in "$@"; do wait "$p" 2>/dev/null || true; done
	for q in "${PIDS[@]}"; do
		case " $* " in *" $q "*) ;; *) keep+=("$q") ;; esac
	done
	PIDS=("${keep[@]}")
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '[run.sh %s] %s\n' "$(date +%T)" "$*" >&2; }

log "building into $WORK"
go build -o "$WORK/stepupd" ./cmd/stepupd
go build -o "$WORK/bench" ./bench
B=$WORK/bench
if [ "$ZITADEL" = 1 ]; then
	# Built inside the module cache with the example's own go.mod, so the
	# stepup module needs none of its dependencies (google/uuid, …).
	ZDIR=$(go list -m -f '{{.Dir}}' github.com/zitadel/oidc/v3)
	ZVER=$(go list -m -f '{{.Version}}' github.com/zitadel/oidc/v3)
	(cd "$ZDIR" && go build -o "$WORK/zitadel-example" ./example/server)
fi

kib() { awk -v k="$2" '$1==k":"{print $2}' "/proc/$1/status"; }
mib() { awk -v k="$1" 'BEGIN{printf "%.0f", k/1024}'; }
used_memory() { sleep 1; redis-cli -p "$1" info memory | tr -d '\r' | awk -F: '$1=="used_memory"{print $2}'; }
count_keys() { redis-cli -p "$1" --scan --pattern "$2" | wc -l; }
wait_for() { # wait_for SECONDS CMD… — poll until CMD succeeds
	local deadline=$((SECONDS + $1)); shift
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -lt $deadline ] || { log "timed out waiting for: $*"; return 1; }
		sleep 0.1
	done
}

"$B" -md-header >"$ROWS"
{
	echo "| server | stepupd RSS MiB idle → after all modes (peak VmHWM) | Redis bytes per login (used_memory Δ / new sessions) during \`login\` | … during \`stepup\` (set-up + step-up) | MEMORY USAGE of a session hash (avg) | sessions / keys at the end |"
	echo "|---|---|---|---|---|---|"
} >"$MEM"

# start_postgres — a private PostgreSQL on a free port (trust on
# loopback, no fsync, as .ci/run starts it for the tests); as root it runs
# as the postgres user the package created.
start_postgres() {
	PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
	[ -n "$PGBIN" ] || { log "DBS=postgres: no /usr/lib/postgresql/*/bin (apt-get install postgresql)"; exit 1; }
	PGDIR=$(mktemp -d /tmp/stepup-bench-pg.XXXXXX)
	if [ "$(id -u)" = 0 ]; then
		chown postgres: "$PGDIR"
		AS_PG="runuser -u postgres --"
	fi
	PGPORT=$("$B" -free-port)
	$AS_PG "$PGBIN/initdb" -D "$PGDIR/data" -U postgres -A trust --no-sync >"$WORK/initdb.log" 2>&1
	$AS_PG "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/server.log" -w -t 60 start \
		-o "-p $PGPORT -k $PGDIR -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" >/dev/null
	PGPID=$(head -n 1 "$PGDIR/data/postmaster.pid")
	log "PostgreSQL $("$PGBIN/postgres" --version | awk '{print $NF}') on 127.0.0.1:$PGPORT (pid $PGPID)"
}

# run_stepup ALG DB [BIN LABEL] — DB is sqlite, postgres or none (BIN
# keeps accounts in Redis). ALG is the bench client's ID token algorithm
# for the current build (access tokens ES256), keys.algorithm for BIN.
run_stepup() {
	local alg=$1 db=$2 bin=${3:-$WORK/stepupd} label=${4:-"stepup $1 clients (AT ES256) $2"}
	local dir=$WORK/stepup-$1-$2 port rport rpid spid dburl="" dbpid="" algopt=(-id-token-alg "$1") dbname=bench_${1,,}
	if [ "$bin" != "$WORK/stepupd" ]; then
		dir=$dir-before
		dbname=${dbname}_before
		algopt=(-alg "$alg")
	fi
	mkdir -p "$dir"
	echo "- $label: load average $(cut -d' ' -f1-3 /proc/loadavg) at $(date -u +%H:%M:%S) UTC" >>"$LOADS"
	port=$("$B" -free-port)
	rport=$("$B" -free-port)
	case $db in
	none) dburl=none ;;
	postgres)
		$AS_PG "$PGBIN/psql" -q -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres -c "CREATE DATABASE $dbname"
		dburl="postgres://postgres@127.0.0.1:$PGPORT/$dbname?sslmode=disable"
		dbpid=",$PGPID+"
		;;
	esac
	log "$label: redis on 127.0.0.1:$rport, stepupd on 127.0.0.1:$port"
	# Like docker-compose.yml: appendonly yes (fsync every second).
	redis-server --bind 127.0.0.1 --port "$rport" --protected-mode yes --dir "$dir" \
		--save '' --appendonly yes --appendfsync everysec --loglevel warning >"$dir/redis.log" 2>&1 &
	rpid=$!
	PIDS+=("$rpid")
	wait_for 10 redis-cli -p "$rport" ping
	"$B" -write-config "$dir" -issuer "http://127.0.0.1:$port" -redis-url "redis://127.0.0.1:$rport/0" \
		-database-url "$dburl" -users "$USERS" "${algopt[@]}" >&2
	"$bin" check-config "$dir/stepup.yaml" >&2
	"$bin" -config "$dir/stepup.yaml" >"$dir/stepupd.log" 2>&1 &
	spid=$!
	PIDS+=("$spid")
	wait_for 120 "$bin" healthcheck "http://127.0.0.1:$port/readyz"
	sleep 1
	local rss0 m0 s0 m1 s1 m2 s2 m3 s3
	rss0=$(kib "$spid" VmRSS)
	local args=(-secrets "$dir/bench-secrets.json" -duration "$DUR" -concurrency "$C" -login-concurrency "$LC"
		-pid "$spid,$rpid$dbpid" -redis "127.0.0.1:$rport" -md "$ROWS")

	local quick=()
	for m in discovery jwks cc; do want "$m" && quick+=("$m"); done
	if [ "${#quick[@]}" -gt 0 ]; then
		"$B" "${args[@]}" -label "$label" -mode "$(IFS=,; echo "${quick[*]}")"
	fi

	m0=$(used_memory "$rport")
	s0=$(count_keys "$rport" 'stepup:{sess:*}')
	if want login; then "$B" "${args[@]}" -label "$label" -mode login; fi
	m1=$(used_memory "$rport")
	s1=$(count_keys "$rport" 'stepup:{sess:*}')

	if [ "$OVERLOAD" = 1 ] && want login; then
		# Same mode with more browsers than stepupd's hashing queue
		# (1 running + 8 waiting on 2 cores): the rest get 503 busy.
		"$B" "${args[@]}" -label "$label (overload)" -mode login -login-concurrency "$C"
	fi

	if want sso; then "$B" "${args[@]}" -label "$label" -mode sso; fi

	m2=$(used_memory "$rport")
	s2=$(count_keys "$rport" 'stepup:{sess:*}')
	if want stepup; then "$B" "${args[@]}" -label "$label" -mode stepup; fi
	m3=$(used_memory "$rport")
	s3=$(count_keys "$rport" 'stepup:{sess:*}')

	local rss1 hwm sample keys
	rss1=$(kib "$spid" VmRSS)
	hwm=$(kib "$spid" VmHWM)
	sample=$(redis-cli -p "$rport" --scan --pattern 'stepup:{sess:*}' | awk 'NR<=500' |
		sed 's/^/MEMORY USAGE /' | redis-cli -p "$rport" | awk '{n++; s+=$1} END {if (n) printf "%.0f B (n=%d)", s/n, n}')
	keys=$(redis-cli -p "$rport" dbsize)
	printf '| %s | %s → %s (%s) | %s | %s | %s | %s / %s |\n' "$label" \
		"$(mib "$rss0")" "$(mib "$rss1")" "$(mib "$hwm")" \
		"$(per "$m0" "$m1" "$s0" "$s1")" "$(per "$m2" "$m3" "$s2" "$s3")" "$sample" "$s3" "$keys" >>"$MEM"

	stop "$spid" "$rpid"
}

# per M0 M1 S0 S1 — bytes of used_memory growth per new session.
per() {
	local dm=$(($2 - $1)) ds=$(($4 - $3))
	if [ "$ds" -gt 0 ]; then
		echo "$((dm / ds)) B ($dm B / $ds)"
	else
		echo "–"
	fi
}

# The zitadel example listens on every interface (":9998"); to keep it on
# loopback it runs, with its bench, in a network namespace of its own that
# has nothing but lo. Without the privilege for that it runs as is.
zitadel_inner() {
	local port=$1 zpid rss0 rss1 hwm
	ip link set lo up 2>/dev/null || true
	PORT=$port "$WORK/zitadel-example" >"$WORK/zitadel.log" 2>&1 &
	zpid=$!
	echo "$zpid" >"$WORK/zitadel.pid"
	trap 'kill $zpid 2>/dev/null || true' EXIT
	echo "- zitadel example $ZVER: load average $(cut -d' ' -f1-3 /proc/loadavg) at $(date -u +%H:%M:%S) UTC" >>"$LOADS"
	wait_for 60 "$WORK/stepupd" healthcheck "http://127.0.0.1:$port/.well-known/openid-configuration"
	sleep 1
	rss0=$(kib "$zpid" VmRSS)
	"$B" -target zitadel -issuer "http://localhost:$port/" -mode all -duration "$DUR" -concurrency "$C" \
		-login-concurrency "$LC" -pid "$zpid" -label "zitadel example $ZVER" -md "$ROWS"
	rss1=$(kib "$zpid" VmRSS)
	hwm=$(kib "$zpid" VmHWM)
	printf '| zitadel example %s | %s → %s (%s) | – (in memory, never evicted) | – | – | – |\n' "$ZVER" \
		"$(mib "$rss0")" "$(mib "$rss1")" "$(mib "$hwm")" >>"$MEM"
}

REV=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null || true)" ]; then REV="$REV+changes"; fi
log "stepup $REV; machine: $(nproc) cores; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
case " $DBS " in *" postgres "*) start_postgres ;; esac
for alg in $ALGS; do
	if [ -n "$BEFORE_BIN" ]; then
		if [ "$BEFORE_DB" = none ]; then
			run_stepup "$alg" none "$BEFORE_BIN" "stepup $alg $BEFORE_REV (accounts in Redis)"
		else
			run_stepup "$alg" "$BEFORE_DB" "$BEFORE_BIN" "stepup $alg $BEFORE_REV (every token $alg) $BEFORE_DB"
		fi
	fi
	for db in $DBS; do
		run_stepup "$alg" "$db"
	done
done
if [ "$ZITADEL" = 1 ]; then
	export WORK B DUR C LC ROWS MEM LOADS ZVER
	export -f zitadel_inner wait_for kib mib log
	if unshare -n true 2>/dev/null; then
		log "zitadel example $ZVER in a private network namespace (loopback only)"
		unshare -n -- bash -c 'zitadel_inner 9998'
	else
		zport=$("$B" -free-port)
		log "zitadel example $ZVER on port $zport (no network namespace available: it binds every interface)"
		bash -c "zitadel_inner $zport"
	fi
fi
log "load after: $(cut -d' ' -f1-3 /proc/loadavg); logs in $WORK"

echo
echo "## Throughput and latency (stepup $REV, $DUR per mode, $(nproc) cores shared by server, Redis and bench)"
echo
cat "$ROWS"
echo
echo "server CPU = user+sys time of stepupd, its redis-server and its PostgreSQL server with every backend (of the example server for zitadel) per operation;"
echo "other procs = CPU used meanwhile by processes that are neither (the machine is shared). Latencies include"
echo "waiting for a core: the bench runs on the same $(nproc) cores. Machine load (1, 5, 15 min) as each server started:"
echo
cat "$LOADS"
echo
echo "## Memory"
echo
cat "$MEM"
