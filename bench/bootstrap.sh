#!/usr/bin/env bash
# Snapshot throughput: sluice's bootstrap of a table (chunked keyset reads,
# watermarks, Maxwell JSON to a file) beside mariadb-dump of the same table to
# /dev/null, interleaved, in one invocation; prints each run, the best and the
# median of both, and the ratio.
#
#   bench/bootstrap.sh [ROWS] [RUNS]   (defaults 1000000 and 5)
#
# sluice is started for each run and timed from the insert of the request into
# maxwell.bootstrap until the request is complete (is_complete=1 is written
# after bootstrap-complete is flushed), polled every 20 ms; its start-up is not
# timed. Options for sluice can be added with SLUICE_OPTS (e.g.
# "--bootstrap_chunk_size=20000").
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
ROWS=${1:-1000000}
RUNS=${2:-5}
PORT=${SLUICE_MYSQL_PORT:-23306}
SQL() { scripts/mariadb.sh sql "$@"; }
TMP=$(mktemp -d)
SLUICE_PID=
cleanup() {
  if [ -n "$SLUICE_PID" ]; then kill "$SLUICE_PID" 2>/dev/null || true; wait "$SLUICE_PID" 2>/dev/null || true; fi
  rm -rf "$TMP"
}
trap cleanup EXIT

scripts/mariadb.sh start >/dev/null
cargo build --release -q -p sluice
SLUICE=$ROOT/target/release/sluice

echo "table: $ROWS rows, 6 columns (bigint key, int, varchar(64), datetime(3), double, decimal(10,2))"
SQL -e "DROP DATABASE IF EXISTS benchsnap; CREATE DATABASE benchsnap;
  CREATE TABLE benchsnap.t (id BIGINT PRIMARY KEY, a INT, b VARCHAR(64), c DATETIME(3), d DOUBLE, e DECIMAL(10,2)) ENGINE=InnoDB;"
lo=1
while [ "$lo" -le "$ROWS" ]; do
  hi=$((lo + 99999)); [ "$hi" -gt "$ROWS" ] && hi=$ROWS
  SQL -e "INSERT INTO benchsnap.t SELECT seq, seq % 100000, CONCAT('row-', seq, '-', MD5(seq)), TIMESTAMP'2024-01-01 00:00:00' + INTERVAL seq SECOND, seq / 3, seq / 7 FROM benchsnap.seq_${lo}_to_${hi}"
  lo=$((hi + 1))
done
# Both read a warm buffer pool.
SQL -N -e "SELECT COUNT(*) FROM benchsnap.t" >/dev/null

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

dump_run() {
  local t0 t1
  t0=$(now)
  mariadb-dump --no-defaults --host=127.0.0.1 --port="$PORT" -uroot --single-transaction benchsnap t >/dev/null
  t1=$(now)
  secs "$t0" "$t1"
}

sluice_run() {
  local n=$1 out="$TMP/out-$1.json" client t0 t1 id done
  client="benchsnap-$$-$n"
  # shellcheck disable=SC2086
  "$SLUICE" --host=127.0.0.1 --port="$PORT" --user=sluice --password=sluice --log_level=warn \
    --client_id="$client" --http_port=0 --producer=file --output_file="$out" ${SLUICE_OPTS:-} \
    2>"$TMP/sluice-$n.log" &
  SLUICE_PID=$!
  # It streams once it stored its first position and made its tables.
  for _ in $(seq 1 200); do
    if SQL -N -e "SELECT 1 FROM maxwell.positions p JOIN information_schema.TABLES t
        ON t.TABLE_SCHEMA = 'maxwell' AND t.TABLE_NAME = 'bootstrap_watermarks' WHERE p.client_id = '$client'" 2>/dev/null | grep -q 1; then break; fi
    sleep 0.05
  done
  sleep 0.5
  t0=$(now)
  id=$(SQL -N -e "INSERT INTO maxwell.bootstrap (database_name, table_name, client_id) VALUES ('benchsnap', 't', '$client'); SELECT LAST_INSERT_ID();")
  while :; do
    done=$(SQL -N -e "SELECT is_complete FROM maxwell.bootstrap WHERE id = $id")
    [ "$done" = 1 ] && break
    sleep 0.02
  done
  t1=$(now)
  kill "$SLUICE_PID"; wait "$SLUICE_PID" 2>/dev/null || true; SLUICE_PID=
  local rows
  rows=$(grep -c '"type":"bootstrap-insert"' "$out")
  if [ "$rows" -ne "$ROWS" ]; then echo "sluice wrote $rows snapshot rows, expected $ROWS" >&2; cat "$TMP/sluice-$n.log" >&2; exit 1; fi
  echo "$(secs "$t0" "$t1") $(stat -c %s "$out")"
  rm -f "$out"
}

rate() { awk -v n="$ROWS" -v t="$1" 'BEGIN { printf "%.0f", n / t }'; }
DUMP=() SL=()
for i in $(seq 1 "$RUNS"); do
  d=$(dump_run)
  read -r s bytes < <(sluice_run "$i")
  DUMP+=("$d"); SL+=("$s")
  printf 'run %d: mariadb-dump %6.3f s %9s rows/s | sluice snapshot %6.3f s %9s rows/s %5.0f MB/s JSON\n' \
    "$i" "$d" "$(rate "$d")" "$s" "$(rate "$s")" "$(awk -v b="$bytes" -v t="$s" 'BEGIN{print b/t/1e6}')"
done
best() { printf '%s\n' "$@" | sort -g | head -1; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END { print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2 }'; }
BD=$(best "${DUMP[@]}"); MD=$(median "${DUMP[@]}"); BS=$(best "${SL[@]}"); MS=$(median "${SL[@]}")
printf 'best:   mariadb-dump %9s rows/s   sluice %9s rows/s   sluice / dump %.2f\n' "$(rate "$BD")" "$(rate "$BS")" "$(awk -v d="$BD" -v s="$BS" 'BEGIN{print d/s}')"
printf 'median: mariadb-dump %9s rows/s   sluice %9s rows/s   sluice / dump %.2f\n' "$(rate "$MD")" "$(rate "$MS")" "$(awk -v d="$MD" -v s="$MS" 'BEGIN{print d/s}')"
