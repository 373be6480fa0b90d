#!/bin/bash
# bench/one.sh BIN MODES DURATION [PERF_PREFIX] — bench/run.sh's
# run_stepup reduced to one binary and no tables, for alternating
# rounds: a fresh redis-server (run.sh's options), `bench -write-config`
# (USERS, default 100; `-alg ES256` for a binary named *f51beb0*, issue
# 18's reference, else `-id-token-alg ES256`), BIN, then each of MODES
# (comma-separated) at concurrency 32, printing the bench's cpu line,
# the per-pid split and BIN's VmHWM. With PERF_PREFIX, `perf record -g`
# samples BIN during each mode (PERF_DELAY seconds after its start,
# default 1, for PERF_LEN seconds) into PERF_PREFIX.MODE.data.
# Environment passes through to BIN (GOGC=100 turns stepupd's collector
# settings off). Example, three binaries alternating:
#   for i in 1 2 3; do for b in /tmp/stepupd-f51beb0 /tmp/a /tmp/b; do bench/one.sh $b cc 5s; done; done
set -u
BIN=$1 MODES=$2 DUR=$3 PERF=${4:-}
B=${BENCH_BIN:-$(cd "$(dirname "$0")/.." && go build -o /tmp/stepup-one-bench ./bench && echo /tmp/stepup-one-bench)}
dir=$(mktemp -d /tmp/stepup-one.XXXX)
port=$($B -free-port); rport=$($B -free-port)
redis-server --bind 127.0.0.1 --port $rport --protected-mode yes --dir $dir --save '' --appendonly yes --appendfsync everysec --loglevel warning >$dir/redis.log 2>&1 &
rpid=$!
for i in $(seq 50); do redis-cli -p $rport ping >/dev/null 2>&1 && break; sleep 0.1; done
algopt="-id-token-alg ES256"; case $BIN in *f51beb0*) algopt="-alg ES256";; esac
$B -write-config $dir -issuer http://127.0.0.1:$port -redis-url redis://127.0.0.1:$rport/0 -database-url "" -users ${USERS:-100} $algopt >/dev/null 2>&1
$BIN -config $dir/stepup.yaml >$dir/stepupd.log 2>${STDERR_TO:-$dir/stepupd.err} &
spid=$!
for i in $(seq 100); do $BIN healthcheck http://127.0.0.1:$port/readyz >/dev/null 2>&1 && break; sleep 0.2; done
sleep 0.5
echo "# $(basename $BIN) $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
for m in ${MODES//,/ }; do
  if [ -n "$PERF" ]; then
    (sleep ${PERF_DELAY:-1}; perf record -F 999 -g -o $PERF.$m.data -p $spid -- sleep ${PERF_LEN:-$(( ${DUR%s} - 2 ))} >/dev/null 2>&1) &
    ppid=$!
  fi
  $B -secrets $dir/bench-secrets.json -duration $DUR -concurrency 32 -mode $m -pid $spid,$rpid -redis 127.0.0.1:$rport 2>&1 | grep -E "^\| |server CPU|RSS" | grep -iv "^| ---\|^| scenario\|^| mode" | head -8
  [ -n "$PERF" ] && wait $ppid
done
grep -m1 VmHWM /proc/$spid/status
kill $spid; wait $spid 2>/dev/null
kill $rpid; wait $rpid 2>/dev/null
rm -rf $dir
