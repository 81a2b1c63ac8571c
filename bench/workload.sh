# Sourced by the benchmarks: writes ROWS rows of bench.t (PER_TXN per
# transaction, 6 columns) into a binlog file of their own and sets
# START_FILE START_POS END_FILE END_POS around them. Needs SQL() defined.
make_workload() {
  SQL -e "DROP DATABASE IF EXISTS bench; CREATE DATABASE bench;
    CREATE TABLE bench.t (id BIGINT PRIMARY KEY, a INT, b VARCHAR(64), c DATETIME(3), d DOUBLE, e DECIMAL(10,2)) ENGINE=InnoDB;"
  SQL -e "FLUSH BINARY LOGS"
  read -r START_FILE START_POS < <(SQL -N -e "SHOW MASTER STATUS" | awk '{print $1, $2}')
  echo "workload: $ROWS rows, $PER_TXN per transaction, 6 columns (bigint, int, varchar, datetime(3), double, decimal)"
  local lo=1 hi
  while [ "$lo" -le "$ROWS" ]; do
    hi=$((lo + PER_TXN - 1)); [ "$hi" -gt "$ROWS" ] && hi=$ROWS
    echo "INSERT INTO bench.t SELECT seq, seq % 100000, CONCAT('row-', seq, '-', MD5(seq)), TIMESTAMP'2024-01-01 00:00:00' + INTERVAL seq SECOND, seq / 3, seq / 7 FROM seq_${lo}_to_${hi};"
    lo=$((hi + 1))
  done | SQL bench
  SQL -e "FLUSH BINARY LOGS"
  read -r END_FILE END_POS < <(SQL -N -e "SHOW MASTER STATUS" | awk '{print $1, $2}')
}
