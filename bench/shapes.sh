#!/usr/bin/env bash
# Throughput per workload shape, every tool run several times interleaved, in
# one invocation:
#   raw   mariadb-binlog --read-from-remote-server --raw   (bytes off the wire)
#   -v    mariadb-binlog --read-from-remote-server -v      (rows decoded to text)
#   each sluice variant, --producer=file, workload's first event to its last
# Usage: bench/shapes.sh [ROWS]   (default 1000000; wide, json and 1-row
#   transactions use ROWS/5). Environment:
#   RUNS=3                 runs of each tool per shape (interleaved)
#   OUT_DIR=/dev/shm       where the outputs go (raw's files, sluice's JSON)
#   SHAPES="narrow mix wide json datetime txn1 txn10k update"
#   VARIANTS="sluice=target/release/sluice"   space-separated name=binary[,option...]
#     e.g. VARIANTS="w1=target/release/sluice,--worker_threads=1 w2=target/release/sluice,--worker_threads=2"
#     A variant with the word FILE among its options reads the shape's binlog
#     file from the server's data directory (--binlog_files) instead of the
#     replication stream, e.g. "f2=target/release/sluice,FILE,--worker_threads=2".
# Prints every run, then per shape and tool: best and median seconds, rows/s,
# binlog MB/s, sluice's ratios to -v and to raw (best/best, median/median),
# CPU seconds (user+sys) per million rows (median) and peak RSS.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
ROWS=${1:-${ROWS:-1000000}}
RUNS=${RUNS:-3}
SHAPES=${SHAPES:-narrow mix wide json datetime txn1 txn10k update}
VARIANTS=${VARIANTS:-sluice=$ROOT/target/release/sluice}
PORT=${SLUICE_MYSQL_PORT:-23306}
SQL() { scripts/mariadb.sh sql "$@"; }
TMP=$(mktemp -d)
# Where the tools write: tmpfs by default, as `-v` writes to /dev/null; the
# file producer still writes and fdatasyncs its file there, but the disk's
# sync time (65-100 ms of a 0.4 s run on this machine's disk) is left out.
# OUT_DIR=/tmp (a disk) measures with it.
OUT_DIR=${OUT_DIR:-/dev/shm}
[ -d "$OUT_DIR" ] && [ -w "$OUT_DIR" ] || OUT_DIR=$TMP
OUT=$(mktemp -d -p "$OUT_DIR")
trap 'rm -rf "$TMP" "$OUT"' EXIT
RESULTS=$TMP/results.tsv

scripts/mariadb.sh start >/dev/null
for v in $VARIANTS; do
  bin=${v#*=}; bin=${bin%%,*}
  [ -x "$bin" ] || { echo "no sluice binary $bin (variant $v)" >&2; exit 2; }
done
BINLOG_DIR=$(dirname "$(SQL -N -e "SELECT @@log_bin_basename")")
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores; outputs in $OUT_DIR ($(stat -f -c %T "$OUT_DIR"))"

mark_start() { SQL -e "FLUSH BINARY LOGS"; read -r START_FILE START_POS < <(SQL -N -e "SHOW MASTER STATUS" | awk '{print $1, $2}'); }
mark_end() { SQL -e "FLUSH BINARY LOGS"; read -r END_FILE END_POS < <(SQL -N -e "SHOW MASTER STATUS" | awk '{print $1, $2}'); }
# INSERT ... SELECT of rows lo..hi, PER transactions of $2 rows, from expression list $1.
batches() {
  local select=$1 per=$2 n=$3 lo=1 hi
  while [ "$lo" -le "$n" ]; do
    hi=$((lo + per - 1)); [ "$hi" -gt "$n" ] && hi=$n
    echo "INSERT INTO bench.t SELECT $select FROM seq_${lo}_to_${hi};"
    lo=$((hi + 1))
  done | SQL bench
}
MIX="seq, seq % 100000, CONCAT('row-', seq, '-', MD5(seq)), TIMESTAMP'2024-01-01 00:00:00' + INTERVAL seq SECOND, seq / 3, seq / 7"
MIX_TABLE="id BIGINT PRIMARY KEY, a INT, b VARCHAR(64), c DATETIME(3), d DOUBLE, e DECIMAL(10,2)"
table() { SQL -e "DROP DATABASE IF EXISTS bench; CREATE DATABASE bench; CREATE TABLE bench.t ($1) ENGINE=InnoDB;"; }

# Sets N (rows) and DESC; writes the shape's workload between START and END.
make_shape() {
  case "$1" in
    narrow) N=$ROWS; DESC="3 integers (BIGINT key, INT, INT), 1,000 rows/txn"
      table "id BIGINT PRIMARY KEY, a INT, b INT"; mark_start
      batches "seq, seq % 100000, seq * 7" 1000 "$N" ;;
    mix) N=$ROWS; DESC="6 columns (bigint, int, varchar, datetime(3), double, decimal), 1,000 rows/txn"
      table "$MIX_TABLE"; mark_start; batches "$MIX" 1000 "$N" ;;
    wide) N=$((ROWS / 5)); DESC="BIGINT key + 10 x VARCHAR(255) (~100 chars each), 1,000 rows/txn"
      table "id BIGINT PRIMARY KEY$(for i in 0 1 2 3 4 5 6 7 8 9; do printf ', v%d VARCHAR(255)' "$i"; done)"; mark_start
      batches "seq$(for i in 0 1 2 3 4 5 6 7 8 9; do printf ", CONCAT('text %d \"q\" ', MD5(seq + %d), ' ', MD5(seq * %d), ' ', seq)" "$i" "$i" "$((i + 2))"; done)" 1000 "$N" ;;
    json) N=$((ROWS / 5)); DESC="BIGINT key + JSON document (~150 bytes, nested), 1,000 rows/txn"
      table "id BIGINT PRIMARY KEY, doc JSON"; mark_start
      batches "seq, JSON_OBJECT('id', seq, 'name', CONCAT('user-', seq), 'tags', JSON_ARRAY('a', 'b', MD5(seq)), 'score', seq / 3, 'active', seq % 2 = 0, 'address', JSON_OBJECT('city', 'Zürich', 'zip', seq % 10000))" 1000 "$N" ;;
    datetime) N=$ROWS; DESC="BIGINT key + 3 x DATETIME(6) + 2 x TIMESTAMP(6), 1,000 rows/txn"
      table "id BIGINT PRIMARY KEY, a DATETIME(6), b DATETIME(6), c DATETIME(6), d TIMESTAMP(6) NULL, e TIMESTAMP(6) NULL"; mark_start
      batches "seq, TIMESTAMP'2024-01-01 00:00:00.123456' + INTERVAL seq SECOND, TIMESTAMP'1999-12-31 23:59:59.000001' + INTERVAL seq MICROSECOND, TIMESTAMP'2030-06-15 12:00:00' - INTERVAL seq MINUTE, TIMESTAMP'2024-01-01 00:00:00.5' + INTERVAL seq SECOND, TIMESTAMP'2010-01-01 00:00:00.000007' + INTERVAL seq MICROSECOND" 1000 "$N" ;;
    txn1) N=$((ROWS / 5)); DESC="the 6-column mix, 1 row per transaction (autocommit INSERTs)"
      table "$MIX_TABLE"; mark_start
      awk -v n="$N" 'BEGIN { for (i = 1; i <= n; i++) printf "INSERT INTO t VALUES (%d,%d,\"row-%d\",\"2024-01-01 00:00:00\"+INTERVAL %d SECOND,%d/3,%d/7);\n", i, i % 100000, i, i, i, i }' | SQL bench ;;
    txn10k) N=$ROWS; DESC="the 6-column mix, 10,000 rows/txn"
      table "$MIX_TABLE"; mark_start; batches "$MIX" 10000 "$N" ;;
    update) N=$ROWS; DESC="UPDATE of the 6-column mix (2 columns changed; before and after images, old values), 1,000 rows/txn"
      table "$MIX_TABLE"; batches "$MIX" 10000 "$N"; mark_start
      local lo=1
      while [ "$lo" -le "$N" ]; do
        echo "UPDATE t SET a = a + 1, b = CONCAT(b, 'x') WHERE id BETWEEN $lo AND $((lo + 999));"; lo=$((lo + 1000))
      done | SQL bench ;;
    *) echo "unknown shape $1" >&2; exit 2 ;;
  esac
  mark_end
  BYTES=$(SQL -N -e "SHOW BINARY LOGS" | awk -v f="$START_FILE" '$1==f {print $2}')
}

# Deletes a run's output and waits for the file system to be done with it:
# freeing (and, on a disk mounted with discard, trimming) hundreds of MB
# otherwise lands in the next tool's run.
settle() { rm -f "$@"; sync; }

# run SHAPE TOOL RUN command...: timed, appended to RESULTS.
run() {
  local shape=$1 tool=$2 r=$3 out; shift 3
  out=$(python3 bench/timeit.py "$@") || { echo "$tool failed on $shape" >&2; exit 1; }
  read -r wall cpu rss <<<"$out"
  local json=0
  [ -f "$OUT/out.json" ] && json=$(stat -c %s "$OUT/out.json")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$shape" "$tool" "$r" "$N" "$BYTES" "$wall" "$cpu" "$rss" "$json" >>"$RESULTS"
  printf '  run %d %-10s %8.3f s %10.0f rows/s  cpu %6.3f s  rss %6.1f MB\n' "$r" "$tool" "$wall" "$(awk -v n="$N" -v t="$wall" 'BEGIN{print n/t}')" "$cpu" "$(awk -v k="$rss" 'BEGIN{print k/1024}')"
}

for shape in $SHAPES; do
  make_shape "$shape"
  echo "== $shape: $N rows, $DESC; binlog $START_FILE $BYTES bytes"
  for r in $(seq 1 "$RUNS"); do
    rm -f "$OUT/out.json" "$OUT"/raw-*
    run "$shape" raw "$r" mariadb-binlog --no-defaults --read-from-remote-server --raw --host=127.0.0.1 --port="$PORT" -uroot --result-file="$OUT/raw-" "$START_FILE"
    settle "$OUT"/raw-*
    run "$shape" -v "$r" sh -c "mariadb-binlog --no-defaults --read-from-remote-server -v --host=127.0.0.1 --port=$PORT -uroot $START_FILE >/dev/null"
    # Each run starts the variants at another one: no variant always comes
    # first (after -v, which writes nothing) or last.
    read -r -a vs <<<"$VARIANTS"
    k=$(( (r - 1) % ${#vs[@]} ))
    for v in "${vs[@]:k}" "${vs[@]:0:k}"; do
      name=${v%%=*}; spec=${v#*=}; IFS=, read -r -a parts <<<"$spec"
      # FILE: the shape's binlog file from disk, else the stream's range.
      source_args=(--init_position="$START_FILE:$START_POS" --stop_position="$END_FILE:$END_POS")
      opts=()
      for o in "${parts[@]:1}"; do
        if [ "$o" = FILE ]; then source_args=(--binlog_files="$BINLOG_DIR/$START_FILE"); else opts+=("$o"); fi
      done
      rm -f "$OUT/out.json"
      run "$shape" "$name" "$r" "${parts[0]}" --host=127.0.0.1 --port="$PORT" --user=sluice --password=sluice --log_level=warn \
        "${source_args[@]}" --client_id="bench-$$-$name-$r-$shape" \
        --http_port=0 --producer=file --output_file="$OUT/out.json" "${opts[@]}"
      lines=$(wc -l <"$OUT/out.json")
      if [ "$lines" -ne "$N" ]; then echo "$name wrote $lines rows on $shape, expected $N" >&2; exit 1; fi
      settle "$OUT/out.json"
    done
  done
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$RESULTS" <<'PY'
import sys, statistics, collections
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
by = collections.OrderedDict()
for shape, tool, r, n, b, wall, cpu, rss, js in rows:
    by.setdefault(shape, collections.OrderedDict()).setdefault(tool, []).append(
        (float(wall), float(cpu), int(rss), int(n), int(b), int(js)))
print()
print(f"{'shape':9} {'tool':8} {'best s':>7} {'med s':>7} {'best rows/s':>12} {'med rows/s':>11} {'MB/s med':>8} "
      f"{'/-v best':>8} {'/-v med':>8} {'/raw med':>8} {'CPU s/Mrow':>10} {'RSS MB':>7}")
for shape, tools in by.items():
    med = {t: statistics.median(x[0] for x in v) for t, v in tools.items()}
    best = {t: min(x[0] for x in v) for t, v in tools.items()}
    for t, v in tools.items():
        n, b = v[0][3], v[0][4]
        cpu = statistics.median(x[1] for x in v) / n * 1e6
        ratio_v_best = best["-v"] / best[t]
        ratio_v_med = med["-v"] / med[t]
        ratio_raw = med["raw"] / med[t]
        rss = max(x[2] for x in v) / 1024
        print(f"{shape:9} {t:8} {best[t]:7.3f} {med[t]:7.3f} {n / best[t]:12.0f} {n / med[t]:11.0f} {b / med[t] / 1e6:8.0f} "
              f"{ratio_v_best:8.2f} {ratio_v_med:8.2f} {ratio_raw:8.2f} {cpu:10.3f} {rss:7.1f}")
PY
