#!/usr/bin/env bash
# A private Redis for tests and the README: its own 127.0.0.1 port and data
# directory, append-only file fsynced on every write (a restart keeps what it
# acknowledged). Uses the machine's redis-server (installed if missing).
#
#   scripts/redis.sh start | stop | status
#
# Environment: SLUICE_REDIS_PORT (default 23379), SLUICE_RUN_DIR (default .run).
# TLS (the certificates of scripts/tls.sh): SLUICE_REDIS_TLS=server | expired |
# wronghost makes the port speak TLS only, showing that certificate;
# SLUICE_TLS_CLIENT_AUTH=yes also requires a client certificate of the test CA.
# SLUICE_REDIS_PASSWORD sets requirepass. Unset: plain text, no password.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUN_DIR=${SLUICE_RUN_DIR:-$ROOT/.run}
PORT=${SLUICE_REDIS_PORT:-23379}
DIR=$RUN_DIR/redis-$PORT
TLS=${SLUICE_REDIS_TLS:-}

install_if_missing() {
  if ! command -v redis-server >/dev/null 2>&1; then
    echo "installing redis-server..." >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq redis-server >&2
  fi
}

running() {
  [ -f "$DIR/redis.pid" ] && kill -0 "$(cat "$DIR/redis.pid")" 2>/dev/null
}

case "${1:-}" in
  start)
    install_if_missing
    running && exit 0
    mkdir -p "$DIR"
    listen=(--port "$PORT")
    if [ -n "$TLS" ]; then
      certs=$("$ROOT/scripts/tls.sh")
      [ -f "$certs/$TLS.pem" ] || { echo "SLUICE_REDIS_TLS=$TLS: no such certificate in $certs" >&2; exit 2; }
      auth=no
      [ "${SLUICE_TLS_CLIENT_AUTH:-no}" = yes ] && auth=yes
      listen=(--port 0 --tls-port "$PORT" --tls-cert-file "$certs/$TLS.pem"
        --tls-key-file "$certs/$TLS.key" --tls-ca-cert-file "$certs/ca.pem"
        --tls-auth-clients "$auth")
    fi
    [ -n "${SLUICE_REDIS_PASSWORD:-}" ] && listen+=(--requirepass "$SLUICE_REDIS_PASSWORD")
    redis-server "${listen[@]}" --bind 127.0.0.1 --daemonize yes --dir "$DIR" \
      --pidfile "$DIR/redis.pid" --logfile "$DIR/redis.log" --save "" \
      --appendonly yes --appendfsync always --protected-mode no
    for _ in $(seq 1 100); do
      if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then exit 0; fi
      sleep 0.1
    done
    echo "redis did not open 127.0.0.1:$PORT; see $DIR/redis.log" >&2
    exit 1
    ;;
  stop)
    if running; then
      kill "$(cat "$DIR/redis.pid")" 2>/dev/null || true
      for _ in $(seq 1 50); do running || break; sleep 0.1; done
    fi
    ;;
  status)
    running && echo "redis running on 127.0.0.1:$PORT" || { echo "redis not running"; exit 1; }
    ;;
  *)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
