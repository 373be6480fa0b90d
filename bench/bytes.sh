#!/usr/bin/env bash
# bench/bytes.sh BIN LABEL [before] — Redis bytes per login: one stepupd,
# a private redis-server (no persistence), 3 s warm-up of -mode login,
# then 40 s of -mode login; used_memory Δ / new sessions, and MEMORY USAGE
# of the keys left, per kind.
set -euo pipefail
# BIN is a stepupd binary (go build -o /tmp/stepupd ./cmd/stepupd at the
# commit to measure); "before" writes the config of a stepupd from before
# issue 18's two signing keys (keys.algorithm). Run it alternately for two binaries
# (docs/benchmarks.md, "Compact records").
BIN=$1 LABEL=$2 BEFORE=${3:-}
DUR=${DUR:-40s}
cd "$(dirname "$0")/.."
B=$(mktemp -d /tmp/bytes-bench.XXXXXX)/bench
go build -o "$B" ./bench
DIR=$(mktemp -d /tmp/bytes-m.XXXXXX)
port=$($B -free-port); rport=$($B -free-port)
redis-server --bind 127.0.0.1 --port "$rport" --dir "$DIR" --save '' --appendonly no --loglevel warning >"$DIR/redis.log" 2>&1 &
rpid=$!
spid=""
trap 'kill $spid $rpid 2>/dev/null || true; wait $spid $rpid 2>/dev/null || true' EXIT
until redis-cli -p "$rport" ping >/dev/null 2>&1; do sleep 0.1; done
if [ -n "$BEFORE" ]; then algopt=(-alg ES256); else algopt=(-id-token-alg ES256); fi
$B -write-config "$DIR" -issuer "http://127.0.0.1:$port" -redis-url "redis://127.0.0.1:$rport/0" -users 3000 "${algopt[@]}" >"$DIR/write.log" 2>&1
"$BIN" -config "$DIR/stepup.yaml" >"$DIR/stepupd.log" 2>&1 &
spid=$!
for _ in $(seq 1 600); do "$BIN" healthcheck "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
args=(-secrets "$DIR/bench-secrets.json" -concurrency 4 -login-concurrency 4 -pid "$spid,$rpid" -redis "127.0.0.1:$rport")
$B "${args[@]}" -mode login -duration 3s >"$DIR/warm.log" 2>&1
um() { sleep 1; redis-cli -p "$rport" info memory | tr -d '\r' | awk -F: '$1=="used_memory"{print $2}'; }
sess() { redis-cli -p "$rport" --scan --pattern 'stepup:{sess:*}' | grep -c '}$' || true; }
m0=$(um); s0=$(sess)
echo "$LABEL: start $(date -u +%H:%M:%S) UTC, load $(cut -d' ' -f1-3 /proc/loadavg)"
$B "${args[@]}" -mode login -duration "$DUR" -label "$LABEL" >"$DIR/run.log" 2>&1
m1=$(um); s1=$(sess)
echo "$LABEL: end $(date -u +%H:%M:%S) UTC, load $(cut -d' ' -f1-3 /proc/loadavg)"
grep -E "^\s*login|ops" "$DIR/run.log" | head -5
dm=$((m1 - m0)); ds=$((s1 - s0))
echo "used_memory $m0 -> $m1 (Δ $dm B), sessions $s0 -> $s1 (Δ $ds): $((dm / ds)) B per login"
redis-cli -p "$rport" --scan --pattern 'stepup:*' >"$DIR/keys"
sed 's/^/MEMORY USAGE /' "$DIR/keys" | redis-cli -p "$rport" >"$DIR/sizes"
paste "$DIR/keys" "$DIR/sizes" | awk -v S="$s1" '
{ k=$1; kind=k
  gsub(/\{sess:[^}]*\}/, "{sess:S}", kind); gsub(/\{grant:[^}]*\}/, "{grant:G}", kind)
  gsub(/\{code:[^}]*\}/, "{code:H}", kind); gsub(/\{c:[^}]*\}/, "{c:H}", kind); gsub(/\{user:[^}]*\}/, "{user:U}", kind)
  sub(/^stepup:flow:.*/, "stepup:flow:F", kind); sub(/^stepup:revoked:.*/, "stepup:revoked:J", kind)
  sub(/:totp:[0-9]+$/, ":totp:N", kind); sub(/^stepup:fail:[^:]*:.*/, "stepup:fail:KIND:ID", kind)
  n[kind]++; b[kind]+=$2; tot+=$2 }
END { for (k in n) printf "  %-32s n=%5d avg=%4.0f B  sum/session=%4.0f B\n", k, n[k], b[k]/n[k], b[k]/S
      printf "  MEMORY USAGE total / sessions: %.0f B (sessions %d)\n", tot/S, S }' | sort
echo "dir $DIR"
if [ -n "${DUMP:-}" ]; then echo dumping
  for pat in 'stepup:{sess:*}' 'stepup:{grant:*}' 'stepup:{code:*}:grant' 'stepup:{user:*}:sessions'; do
    k=$(grep -F "${pat%%\**}" "$DIR/keys" | grep "${pat##*\*}$" | head -1 || true)
    echo "== $k ($(redis-cli -p "$rport" object encoding "$k"), $(redis-cli -p "$rport" memory usage "$k") B)"
    case $(redis-cli -p "$rport" type "$k") in
      hash) redis-cli -p "$rport" hgetall "$k" | paste - - | awk -F'\t' '{printf "   %s = %s (%d B)\n", $1, substr($2,1,70), length($2)}' ;;
      string) redis-cli -p "$rport" get "$k" ;;
      set) redis-cli -p "$rport" smembers "$k" ;;
    esac
  done
fi
