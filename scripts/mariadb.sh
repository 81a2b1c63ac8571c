#!/usr/bin/env bash
# A private MariaDB for tests and the demo: its own 127.0.0.1 port, socket and
# data directory, binlog on (ROW, FULL image, FULL metadata), utf8mb4.
#
#   scripts/mariadb.sh start   # idempotent; installs mariadb-server if missing
#   scripts/mariadb.sh stop
#   scripts/mariadb.sh stop-all   # every private instance under the run dir
#   scripts/mariadb.sh status
#   scripts/mariadb.sh sql [mariadb client args...]   # root client on the socket
#
# Environment: SLUICE_MYSQL_PORT (default 23306), SLUICE_RUN_DIR (default .run
# in the repository), SLUICE_MYSQL_BINLOG (row, the default; row-minimal:
# MINIMAL row metadata, so decoding depends on the schema sluice follows;
# statement; off:
# misconfigured servers for tests of sluice's refusal to start),
# SLUICE_MYSQL_SERVER_ID (default 1),
# SLUICE_MYSQL_TLS (off, the default; on: TLS with certificates from
# scripts/tls.sh; require: the same and require_secure_transport=ON),
# SLUICE_MYSQL_TLS_CERT (server, the default; expired; wronghost: which
# certificate of scripts/tls.sh the server shows). TLS settings apply when the
# instance starts (an instance already running keeps its own). Users: root (socket and 127.0.0.1, no password) and
# sluice/sluice with only what sluice needs.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUN_DIR=${SLUICE_RUN_DIR:-$ROOT/.run}
PORT=${SLUICE_MYSQL_PORT:-23306}
DIR=$RUN_DIR/mariadb-$PORT
DATA=$DIR/data
SOCK=$DIR/mysqld.sock
PID=$DIR/mysqld.pid
LOG=$DIR/error.log
case "${SLUICE_MYSQL_BINLOG:-row}" in
  row) BINLOG_ARGS=(--log-bin=mysql-bin --binlog-format=ROW --binlog-row-image=FULL --binlog-row-metadata=FULL --binlog-annotate-row-events=ON --log-slave-updates=ON) ;;
  row-minimal) BINLOG_ARGS=(--log-bin=mysql-bin --binlog-format=ROW --binlog-row-image=FULL --binlog-row-metadata=MINIMAL --log-slave-updates=ON) ;;
  statement) BINLOG_ARGS=(--log-bin=mysql-bin --binlog-format=STATEMENT) ;;
  off) BINLOG_ARGS=(--skip-log-bin) ;;
  *) echo "SLUICE_MYSQL_BINLOG must be row, row-minimal, statement or off" >&2; exit 2 ;;
esac
TLS_ARGS=()
tls_args() {
  local cert=${SLUICE_MYSQL_TLS_CERT:-server} tls_dir
  case "$cert" in server|expired|wronghost) ;; *) echo "SLUICE_MYSQL_TLS_CERT must be server, expired or wronghost" >&2; exit 2 ;; esac
  tls_dir=$(SLUICE_RUN_DIR="$RUN_DIR" "$ROOT/scripts/tls.sh")
  TLS_ARGS=(--ssl-ca="$tls_dir/ca.pem" --ssl-cert="$tls_dir/$cert.pem" --ssl-key="$tls_dir/$cert.key")
}
case "${SLUICE_MYSQL_TLS:-off}" in
  off) ;;
  on) tls_args ;;
  require) tls_args; TLS_ARGS+=(--require-secure-transport=ON) ;;
  *) echo "SLUICE_MYSQL_TLS must be off, on or require" >&2; exit 2 ;;
esac

install_if_missing() {
  if ! command -v mariadbd >/dev/null 2>&1 && [ ! -x /usr/sbin/mariadbd ]; then
    echo "installing mariadb-server..." >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq mariadb-server mariadb-client >&2
  fi
}

client() { mariadb --no-defaults -uroot -S "$SOCK" "$@"; }

running() { [ -S "$SOCK" ] && client -e 'SELECT 1' >/dev/null 2>&1; }

start() {
  install_if_missing
  mkdir -p "$DIR"
  if running; then return 0; fi
  # Serialise concurrent starts; -o keeps the lock away from the server process.
  flock -o "$DIR/.lock" "$0" __start_locked
}

start_locked() {
  if running; then return 0; fi
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    echo "port $PORT is taken by another process (not this checkout's MariaDB in $DIR);" \
         "stop it or choose another port with SLUICE_MYSQL_PORT" >&2
    exit 1
  fi
  mkdir -p "$DIR/tmp"
  if [ ! -d "$DATA/mysql" ]; then
    # Installs of several instances are serialised and each gets its own
    # tmpdir (concurrent bootstraps have been seen to trip over each other);
    # the data directory appears only once complete.
    rm -rf "$DATA" "$DATA.new"
    flock "$RUN_DIR/.install.lock" mariadb-install-db --no-defaults --datadir="$DATA.new" --user="$(id -un)" \
      --tmpdir="$DIR/tmp" --auth-root-authentication-method=normal --skip-test-db >"$DIR/install.log" 2>&1 \
      || { cat "$DIR/install.log" >&2; rm -rf "$DATA.new"; exit 1; }
    mv "$DATA.new" "$DATA"
  fi
  /usr/sbin/mariadbd --no-defaults --user="$(id -un)" --datadir="$DATA" --tmpdir="$DIR/tmp" \
    --port="$PORT" --bind-address=127.0.0.1 --socket="$SOCK" --pid-file="$PID" \
    --log-error="$LOG" --server-id="${SLUICE_MYSQL_SERVER_ID:-1}" "${BINLOG_ARGS[@]}" \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci \
    --innodb-buffer-pool-size="${SLUICE_MYSQL_BUFFER_POOL:-256M}" --innodb-log-file-size=256M --innodb-flush-log-at-trx-commit=2 \
    --sync-binlog=0 --max-allowed-packet=256M --skip-name-resolve --max-connections=500 \
    --log-bin-trust-function-creators=1 ${TLS_ARGS[@]+"${TLS_ARGS[@]}"} >/dev/null 2>&1 &
  for _ in $(seq 1 120); do
    if running; then break; fi
    sleep 0.25
  done
  if ! running; then echo "MariaDB did not start; see $LOG" >&2; tail -20 "$LOG" >&2; exit 1; fi
  client <<'SQL'
CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';
GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
CREATE USER IF NOT EXISTS 'sluice'@'127.0.0.1' IDENTIFIED BY 'sluice';
CREATE USER IF NOT EXISTS 'sluice'@'localhost' IDENTIFIED BY 'sluice';
GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO 'sluice'@'127.0.0.1';
GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO 'sluice'@'localhost';
GRANT ALL ON maxwell.* TO 'sluice'@'127.0.0.1';
GRANT ALL ON maxwell.* TO 'sluice'@'localhost';
CREATE DATABASE IF NOT EXISTS test;
SQL
}

stop() {
  if [ -f "$PID" ]; then
    local pid; pid=$(cat "$PID")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null || true
  fi
}

case "${1:-start}" in
  start) start; echo "MariaDB on 127.0.0.1:$PORT (socket $SOCK)";;
  __start_locked) start_locked;;
  stop) stop;;
  stop-all)
    for p in "$RUN_DIR"/mariadb-*/mysqld.pid; do
      [ -f "$p" ] || continue
      pid=$(cat "$p"); kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    done;;
  status) if running; then echo "running on 127.0.0.1:$PORT"; else echo "stopped"; exit 1; fi;;
  sql) shift; client "$@";;
  *) echo "usage: $0 start|stop|status|sql" >&2; exit 2;;
esac
