#!/usr/bin/env bash
# Throughput of the producers that speak their broker's protocol, measured in
# one invocation on the same workload, each run from the workload's first
# event to its last with every message acknowledged before sluice exits:
#   (ref) sluice -> file (fdatasync'd): the pipeline without a broker
#   (a)   sluice -> Redis rpush            (b) redis-cli --pipe of the same
#                                              RPUSH commands (bare client)
#   (c)   sluice -> NATS core (PING/PONG)  (d) sluice -> NATS JetStream (acks)
#   (e)   sluice -> RabbitMQ, persistent messages on a durable queue, confirms
#   (f)   sluice -> RabbitMQ exchange bound to no queue, confirms (what the
#         producer itself costs: the broker only routes)
# Usage: bench/brokers.sh [ROWS]   (default 200000; ROWS_PER_TXN default 1000)
# SLUICE_OPTS: options added to every sluice run (e.g. --worker_threads=1).
# The brokers are the private ones of scripts/redis.sh, nats.sh, rabbitmq.sh.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
ROWS=${1:-${ROWS:-200000}}
PER_TXN=${ROWS_PER_TXN:-1000}
PORT=${SLUICE_MYSQL_PORT:-23306}
SQL() { scripts/mariadb.sh sql "$@"; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

scripts/mariadb.sh start >/dev/null
scripts/redis.sh start
scripts/nats.sh start
scripts/rabbitmq.sh start
cargo build --release -q -p sluice --bin sluice
SLUICE=$ROOT/target/release/sluice

# shellcheck source=bench/workload.sh
. "$ROOT/bench/workload.sh"
make_workload

now() { date +%s.%N; }
TAG=$$$(date +%s)
timed() { # label, command...
  local label=$1 t0 t1
  shift
  t0=$(now)
  "$@"
  t1=$(now)
  awk -v a="$t0" -v b="$t1" -v n="$ROWS" -v l="$label" \
    'BEGIN { printf "%-62s %8.3f s %10.0f rows/s\n", l, b - a, n / (b - a) }' | tee -a "$TMP/results"
}
run_sluice() { # producer args...
  "$SLUICE" --host=127.0.0.1 --port="$PORT" --user=sluice --password=sluice --log_level=warn \
    --init_position="$START_FILE:$START_POS" --stop_position="$END_FILE:$END_POS" \
    --client_id="bench-$$-$RANDOM-$(date +%s%N)" --http_port=0 --heartbeat_interval_ms=0 ${SLUICE_OPTS:-} "$@"
}

timed "(ref) sluice -> file, fdatasync'd" run_sluice --producer=file --output_file="$TMP/out.json"
LINES=$(wc -l <"$TMP/out.json")
[ "$LINES" -eq "$ROWS" ] || { echo "sluice wrote $LINES rows, expected $ROWS" >&2; exit 1; }

REDIS=(redis-cli -p "${SLUICE_REDIS_PORT:-23379}")
timed "(a) sluice -> Redis rpush, every command answered" \
  run_sluice --producer=redis --redis_host=127.0.0.1 --redis_port="${SLUICE_REDIS_PORT:-23379}" \
  --redis_type=rpush --redis_key="bench_$TAG"
[ "$("${REDIS[@]}" LLEN "bench_$TAG")" -eq "$ROWS" ] || { echo "redis list is short" >&2; exit 1; }
python3 - "$TMP/out.json" "bench_pipe_$TAG" >"$TMP/pipe.resp" <<'PY'
import sys
key = sys.argv[2].encode()
out = sys.stdout.buffer
for line in open(sys.argv[1], "rb"):
    v = line.rstrip(b"\n")
    out.write(b"*3\r\n$5\r\nRPUSH\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(key), key, len(v), v))
PY
timed "(b) redis-cli --pipe, the same RPUSH commands preloaded" \
  sh -c "${REDIS[*]} --pipe <'$TMP/pipe.resp' >/dev/null"
"${REDIS[@]}" DEL "bench_$TAG" "bench_pipe_$TAG" >/dev/null

NATS_URL=nats://127.0.0.1:${SLUICE_NATS_PORT:-23422}
timed "(c) sluice -> NATS core, server PONG after each batch" \
  run_sluice --producer=nats --nats_url="$NATS_URL" --nats_subject="bench.$TAG"
# A file-backed stream for (d), made and removed with the JetStream API.
js() { # api-subject json
  python3 - "${SLUICE_NATS_PORT:-23422}" "$1" "$2" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
f = s.makefile("rb")
f.readline()
body = sys.argv[3].encode()
s.sendall(b'CONNECT {"verbose":false}\r\nSUB _INBOX.b 1\r\nPUB %s _INBOX.b %d\r\n%s\r\n' % (sys.argv[2].encode(), len(body), body))
while True:
    line = f.readline()
    if line.startswith(b"MSG"):
        f.read(int(line.split()[-1]) + 2)
        break
    if line.startswith(b"PING"):
        s.sendall(b"PONG\r\n")
PY
}
js "\$JS.API.STREAM.CREATE.BENCH$TAG" "{\"name\":\"BENCH$TAG\",\"subjects\":[\"jsbench.$TAG\"],\"storage\":\"file\"}"
timed "(d) sluice -> NATS JetStream (file storage), every row acknowledged" \
  run_sluice --producer=nats --nats_url="$NATS_URL" --nats_subject="jsbench.$TAG" --nats_jetstream=true
js "\$JS.API.STREAM.DELETE.BENCH$TAG" ""

timed "(e) sluice -> RabbitMQ, persistent, durable queue, confirms" \
  run_sluice --producer=rabbitmq --rabbitmq_host=127.0.0.1 --rabbitmq_port="${SLUICE_RABBITMQ_PORT:-23672}" \
  --rabbitmq_exchange=sluice.test.topic --rabbitmq_exchange_type=topic --rabbitmq_exchange_durable=true \
  --rabbitmq_message_persistent=true --rabbitmq_routing_key_template=sluice_rmq_e2e.bench
scripts/rabbitmq.sh ctl purge_queue sluice.e2e >/dev/null 2>&1 || true
timed "(f) sluice -> RabbitMQ exchange with no queue bound, confirms" \
  run_sluice --producer=rabbitmq --rabbitmq_host=127.0.0.1 --rabbitmq_port="${SLUICE_RABBITMQ_PORT:-23672}" \
  --rabbitmq_exchange="bench.noqueue.$TAG" --rabbitmq_exchange_autodelete=true

awk '/\(ref\)/ { ref = $(NF-1) } /\(b\)/ { pipe = $(NF-1) } /\(a\)/ { a = $(NF-1) }
  END { printf "ratios: Redis/file %.2f, Redis/redis-cli --pipe %.2f\n", a / ref, a / pipe }' "$TMP/results"
awk '/\(ref\)/ { ref = $(NF-1) } /\((c|d|e|f)\)/ { printf "%s / file: %.2f\n", $1, $(NF-1) / ref }' ref=0 "$TMP/results"
