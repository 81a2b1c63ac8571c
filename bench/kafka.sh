#!/usr/bin/env bash
# Kafka throughput, measured in one invocation against the same broker:
#   (a) a bare librdkafka producer (examples/kafka_baseline.rs: same bundled
#       library, acks=all, idempotent) sending sluice's messages, preloaded
#   (b) sluice --producer=kafka from the workload's first event to its last,
#       every message acknowledged (binlog read, decode, JSON, keys, produce)
# Usage: bench/kafka.sh [ROWS]   (default 300000; ROWS_PER_TXN default 1000)
# SLUICE_OPTS: options added to every sluice run (e.g. --worker_threads=1).
# The broker is tansu with in-memory storage (scripts/kafka.sh) on 127.0.0.1.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
ROWS=${1:-${ROWS:-300000}}
PER_TXN=${ROWS_PER_TXN:-1000}
PORT=${SLUICE_MYSQL_PORT:-23306}
KPORT=${SLUICE_KAFKA_PORT:-23392}
SQL() { scripts/mariadb.sh sql "$@"; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

scripts/mariadb.sh start >/dev/null
SLUICE_KAFKA_PORT=$KPORT scripts/kafka.sh start
cargo build --release -q -p sluice --features kafka --bin sluice --example kafka_baseline
SLUICE=$ROOT/target/release/sluice
BASELINE=$ROOT/target/release/examples/kafka_baseline

# shellcheck source=bench/workload.sh
. "$ROOT/bench/workload.sh"
make_workload

now() { date +%s.%N; }
run_sluice() { # producer args...
  "$SLUICE" --host=127.0.0.1 --port="$PORT" --user=sluice --password=sluice --log_level=warn \
    --init_position="$START_FILE:$START_POS" --stop_position="$END_FILE:$END_POS" \
    --client_id="bench-$$-$RANDOM-$(date +%s%N)" --http_port=0 --heartbeat_interval_ms=0 ${SLUICE_OPTS:-} "$@"
}
TAG=$$-$(date +%s)
# The messages sluice produces, for the baseline to send.
run_sluice --producer=file --output_file="$TMP/out.json"
LINES=$(wc -l <"$TMP/out.json")
[ "$LINES" -eq "$ROWS" ] || { echo "sluice wrote $LINES rows, expected $ROWS" >&2; exit 1; }
SLUICE_KAFKA_PORT=$KPORT scripts/kafka.sh topic "base_$TAG" 1
SLUICE_KAFKA_PORT=$KPORT scripts/kafka.sh topic "sluice_$TAG" 1

read -r _ BASE_S < <("$BASELINE" "127.0.0.1:$KPORT" "base_$TAG" "$TMP/out.json")
t0=$(now)
run_sluice --producer=kafka --kafka.bootstrap.servers="127.0.0.1:$KPORT" --kafka_topic="sluice_$TAG"
t1=$(now); SL_S=$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')

rate() { awk -v n="$1" -v t="$2" 'BEGIN { printf "%.0f", n / t }'; }
BASE_R=$(rate "$ROWS" "$BASE_S"); SL_R=$(rate "$ROWS" "$SL_S")
printf '%-58s %8.3f s %10s rows/s\n' "(a) bare librdkafka producer, preloaded messages" "$BASE_S" "$BASE_R"
printf '%-58s %8.3f s %10s rows/s\n' "(b) sluice binlog -> Kafka, every message acknowledged" "$SL_S" "$SL_R"
awk -v s="$SL_R" -v b="$BASE_R" 'BEGIN { printf "sluice / bare producer: %.2f\n", s / b }'
