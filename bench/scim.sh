#!/usr/bin/env bash
# bench/scim.sh — SCIM 2.0 provisioning at scale: fill the account store
# with SCIM_USERS users through POST /scim/v2/Users, then measure creating
# more and listing with a filter, on SQLite and on PostgreSQL, and print
# the query plans of the lookups (EXPLAIN) at that size.
#
#   bench/scim.sh [DURATION]         # default 10s per timed mode
#
# Environment: SCIM_USERS (default 100000), CONCURRENCY (default 16),
# DBS (default "sqlite postgres"). Every process it starts is stopped on
# exit; logs and databases stay in the work dir (removed with it).
set -euo pipefail
cd "$(dirname "$0")/.."

DUR=${1:-10s}
N=${SCIM_USERS:-100000}
C=${CONCURRENCY:-16}
DBS=${DBS:-"sqlite postgres"}

WORK=$(mktemp -d /tmp/stepup-scim.XXXXXX)
ROWS=$WORK/rows.md
PLANS=$WORK/plans.md
PIDS=()
PGDIR="" PGBIN="" AS_PG="" PGPORT="" PGPID=""
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	if [ -n "$PGDIR" ]; then $AS_PG "$PGBIN/pg_ctl" -D "$PGDIR/data" -m immediate -w stop >/dev/null 2>&1 || true; fi
	[ -z "$PGDIR" ] || rm -rf "$PGDIR"
}
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
log() { printf '[scim.sh %s] %s\n' "$(date +%T)" "$*" >&2; }
wait_for() {
	local deadline=$((SECONDS + $1)); shift
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -lt $deadline ] || { log "timed out waiting for: $*"; return 1; }
		sleep 0.1
	done
}

log "building into $WORK"
go build -o "$WORK/stepupd" ./cmd/stepupd
go build -o "$WORK/bench" ./bench
B=$WORK/bench

start_postgres() {
	PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
	[ -n "$PGBIN" ] || { log "no /usr/lib/postgresql/*/bin (apt-get install postgresql)"; exit 1; }
	PGDIR=$(mktemp -d /tmp/stepup-scim-pg.XXXXXX)
	if [ "$(id -u)" = 0 ]; then
		chown postgres: "$PGDIR"
		AS_PG="runuser -u postgres --"
	fi
	PGPORT=$("$B" -free-port)
	$AS_PG "$PGBIN/initdb" -D "$PGDIR/data" -U postgres -A trust --no-sync >"$WORK/initdb.log" 2>&1
	$AS_PG "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/server.log" -w -t 60 start \
		-o "-p $PGPORT -k $PGDIR -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" >/dev/null
	PGPID=$(head -n 1 "$PGDIR/data/postmaster.pid")
	$AS_PG "$PGBIN/psql" -q -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres -c "CREATE DATABASE scim"
	log "PostgreSQL on 127.0.0.1:$PGPORT (pid $PGPID; fsync off, as in CI)"
}

# explain DB — the plans of the queries a SCIM list runs (account/sqlstore
# search.go and getRecord), on the filled database.
explain() {
	local db=$1 dir=$2 q
	local -a qs=(
		"SELECT COUNT(*) FROM accounts WHERE username_key = 'scim42'"
		"SELECT subject FROM accounts WHERE username_key = 'scim42' ORDER BY created_at, subject LIMIT 100 OFFSET 0"
		"SELECT subject FROM accounts WHERE email_key = 'scim42@example.com' ORDER BY created_at, subject LIMIT 100 OFFSET 0"
		"SELECT subject FROM accounts WHERE external_id = 'ext-scim42' ORDER BY created_at, subject LIMIT 100 OFFSET 0"
		"SELECT subject FROM accounts WHERE username_key = 'scim42' AND active = true ORDER BY created_at, subject LIMIT 100 OFFSET 0"
		"SELECT COUNT(*) FROM accounts"
		"SELECT subject FROM accounts ORDER BY created_at, subject LIMIT 100 OFFSET $((N / 2))"
	)
	{
		echo "#### $db"
		echo
		echo '```'
		for q in "${qs[@]}"; do
			echo "$q"
			if [ "$db" = sqlite ]; then
				sqlite3 "$dir/stepup.db" "EXPLAIN QUERY PLAN $q" | sed 's/^/    /'
			else
				$AS_PG "$PGBIN/psql" -qAt -h 127.0.0.1 -p "$PGPORT" -U postgres -d scim -c "EXPLAIN $q" | sed 's/^/    /'
			fi
		done
		echo '```'
		echo
	} >>"$PLANS"
}

"$B" -md-header >"$ROWS"
: >"$PLANS"
REV=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null || true)" ]; then REV="$REV+changes"; fi
log "stepup $REV; $(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg)"
case " $DBS " in *" postgres "*) start_postgres ;; esac
LOADS=""
for db in $DBS; do
	dir=$WORK/$db
	mkdir -p "$dir"
	port=$("$B" -free-port)
	rport=$("$B" -free-port)
	redis-server --bind 127.0.0.1 --port "$rport" --protected-mode yes --dir "$dir" --save '' --appendonly no \
		--loglevel warning >"$dir/redis.log" 2>&1 &
	rpid=$!
	PIDS+=("$rpid")
	wait_for 10 redis-cli -p "$rport" ping
	dburl="" dbpid=""
	if [ "$db" = postgres ]; then
		dburl="postgres://postgres@127.0.0.1:$PGPORT/scim?sslmode=disable"
		dbpid=",$PGPID+"
	fi
	"$B" -write-config "$dir" -issuer "http://127.0.0.1:$port" -redis-url "redis://127.0.0.1:$rport/0" \
		-database-url "$dburl" -users 2 -alg ES256 >&2
	"$WORK/stepupd" -config "$dir/stepup.yaml" >"$dir/stepupd.log" 2>&1 &
	spid=$!
	PIDS+=("$spid")
	wait_for 60 "$WORK/stepupd" healthcheck "http://127.0.0.1:$port/readyz"
	args=(-secrets "$dir/bench-secrets.json" -concurrency "$C" -pid "$spid,$rpid$dbpid" -md "$ROWS" -warmup=false)
	LOADS="$LOADS
- $db: load average $(cut -d' ' -f1-3 /proc/loadavg) at $(date -u +%H:%M:%S) UTC (fill start)"
	log "$db: filling $N users through POST /scim/v2/Users"
	"$B" "${args[@]}" -label "$db: fill 0→$N" -mode scim-create -scim-count "$N"
	LOADS="$LOADS; $(cut -d' ' -f1-3 /proc/loadavg) at $(date -u +%H:%M:%S) UTC (fill end)"
	"$B" "${args[@]}" -label "$db at $N users" -mode scim-create -scim-prefix more -duration "$DUR"
	"$B" "${args[@]}" -label "$db at $N users" -mode scim-list -scim-existing "$N" -duration "$DUR"
	LOADS="$LOADS; $(cut -d' ' -f1-3 /proc/loadavg) at $(date -u +%H:%M:%S) UTC (end)"
	explain "$db" "$dir"
	stop "$spid" "$rpid"
done

echo
echo "## SCIM at $N users (stepup $REV, $DUR per timed mode, $C concurrent, $(nproc) cores shared by server, databases and bench)"
echo
cat "$ROWS"
echo
echo "server CPU = user+sys of stepupd, its redis-server and (postgres) the PostgreSQL server with its backends. Machine load:"
echo "$LOADS"
echo
echo "### Query plans at $N users"
echo
cat "$PLANS"
