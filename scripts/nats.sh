#!/usr/bin/env bash
# A private NATS server with JetStream for tests and the README: its own
# 127.0.0.1 port and JetStream store under the run dir (a restart keeps the
# streams and what they acknowledged). Uses the machine's nats-server
# (installed if missing).
#
#   scripts/nats.sh start | stop | status
#
# Environment: SLUICE_NATS_PORT (default 23422), SLUICE_RUN_DIR (default .run).
# TLS (the certificates of scripts/tls.sh): SLUICE_NATS_TLS=server | expired |
# wronghost makes the server require TLS, showing that certificate;
# SLUICE_TLS_CLIENT_AUTH=yes also requires a client certificate of the test CA.
# SLUICE_NATS_AUTH=FILE includes FILE (a configuration fragment: users,
# NKey users, an operator and its resolver) in the server's configuration.
# Unset: plain text, anyone may connect.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUN_DIR=${SLUICE_RUN_DIR:-$ROOT/.run}
PORT=${SLUICE_NATS_PORT:-23422}
DIR=$RUN_DIR/nats-$PORT

install_if_missing() {
  if ! command -v nats-server >/dev/null 2>&1 && [ ! -x /usr/sbin/nats-server ]; then
    echo "installing nats-server..." >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq nats-server >&2
  fi
}

running() {
  [ -f "$DIR/nats.pid" ] && kill -0 "$(cat "$DIR/nats.pid")" 2>/dev/null
}

mkdir -p "$RUN_DIR"
exec 9>"$RUN_DIR/nats.lock"
flock 9

case "${1:-}" in
  start)
    install_if_missing
    running && exit 0
    mkdir -p "$DIR/jetstream"
    conf=$DIR/nats.conf
    {
      echo "listen: 127.0.0.1:$PORT"
      echo "jetstream { store_dir: \"$DIR/jetstream\" }"
      if [ -n "${SLUICE_NATS_TLS:-}" ]; then
        certs=$("$ROOT/scripts/tls.sh")
        [ -f "$certs/$SLUICE_NATS_TLS.pem" ] || { echo "SLUICE_NATS_TLS=$SLUICE_NATS_TLS: no such certificate in $certs" >&2; exit 2; }
        verify=false
        [ "${SLUICE_TLS_CLIENT_AUTH:-no}" = yes ] && verify=true
        echo "tls { cert_file: \"$certs/$SLUICE_NATS_TLS.pem\", key_file: \"$certs/$SLUICE_NATS_TLS.key\", ca_file: \"$certs/ca.pem\", verify: $verify }"
      fi
      if [ -n "${SLUICE_NATS_AUTH:-}" ]; then
        cp "$SLUICE_NATS_AUTH" "$DIR/auth.conf"
        echo "include ./auth.conf"
      fi
    } >"$conf"
    PATH=$PATH:/usr/sbin nohup nats-server -c "$conf" \
      -P "$DIR/nats.pid" -l "$DIR/nats.log" >/dev/null 2>&1 9>&- &
    for _ in $(seq 1 100); do
      if [ -f "$DIR/nats.pid" ] && (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then exit 0; fi
      sleep 0.1
    done
    echo "nats-server did not open 127.0.0.1:$PORT; see $DIR/nats.log" >&2
    exit 1
    ;;
  stop)
    if running; then
      pid=$(cat "$DIR/nats.pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$DIR/nats.pid"
    fi
    ;;
  status)
    running && echo "nats running on 127.0.0.1:$PORT" || { echo "nats not running"; exit 1; }
    ;;
  *)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
