#!/usr/bin/env bash
# Throughput of sluice against the raw binlog, measured in one invocation:
#   (a) mariadb-binlog --read-from-remote-server --raw   (bytes off the wire)
#   (b) mariadb-binlog --read-from-remote-server -v      (decoding rows to text)
#   (c) sluice --producer=file, from the workload's first event to its last
# Usage: bench/run.sh [ROWS]   (default 1000000; ROWS_PER_TXN default 1000)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
ROWS=${1:-${ROWS:-1000000}}
PER_TXN=${ROWS_PER_TXN:-1000}
PORT=${SLUICE_MYSQL_PORT:-23306}
SQL() { scripts/mariadb.sh sql "$@"; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

scripts/mariadb.sh start >/dev/null
cargo build --release -q -p sluice
SLUICE=$ROOT/target/release/sluice

# shellcheck source=bench/workload.sh
. "$ROOT/bench/workload.sh"
make_workload
BYTES=$(SQL -N -e "SHOW BINARY LOGS" | awk -v f="$START_FILE" '$1==f {print $2}')
echo "binlog: $START_FILE, $BYTES bytes"

now() { date +%s.%N; }
rate() { awk -v n="$1" -v t="$2" 'BEGIN { printf "%.0f", n / t }'; }

t0=$(now)
mariadb-binlog --no-defaults --read-from-remote-server --raw --host=127.0.0.1 --port="$PORT" -uroot \
  --result-file="$TMP/raw-" "$START_FILE"
t1=$(now); RAW_S=$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')

t0=$(now)
mariadb-binlog --no-defaults --read-from-remote-server -v --host=127.0.0.1 --port="$PORT" -uroot "$START_FILE" >/dev/null
t1=$(now); DEC_S=$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')

t0=$(now)
"$SLUICE" --host=127.0.0.1 --port="$PORT" --user=sluice --password=sluice --log_level=warn \
  --init_position="$START_FILE:$START_POS" --stop_position="$END_FILE:$END_POS" --client_id="bench-$$-$(date +%s)" \
  --http_port=0 --producer=file --output_file="$TMP/out.json"
t1=$(now); SL_S=$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')
LINES=$(wc -l <"$TMP/out.json")
if [ "$LINES" -ne "$ROWS" ]; then echo "sluice wrote $LINES rows, expected $ROWS" >&2; exit 1; fi

RAW_R=$(rate "$ROWS" "$RAW_S"); DEC_R=$(rate "$ROWS" "$DEC_S"); SL_R=$(rate "$ROWS" "$SL_S")
printf '%-44s %8.3f s %12s rows/s %8.0f MB/s\n' "(a) mariadb-binlog --raw (wire only)" "$RAW_S" "$RAW_R" "$(awk -v b="$BYTES" -v t="$RAW_S" 'BEGIN{print b/t/1e6}')"
printf '%-44s %8.3f s %12s rows/s\n' "(b) mariadb-binlog -v (decode to text)" "$DEC_S" "$DEC_R"
printf '%-44s %8.3f s %12s rows/s %8.0f MB/s JSON\n' "(c) sluice -> file (Maxwell JSON)" "$SL_S" "$SL_R" "$(awk -v b="$(stat -c %s "$TMP/out.json")" -v t="$SL_S" 'BEGIN{print b/t/1e6}')"
awk -v s="$SL_R" -v a="$RAW_R" -v b="$DEC_R" 'BEGIN { printf "sluice / raw read: %.2f   sluice / mariadb-binlog -v: %.2f\n", s / a, s / b }'
