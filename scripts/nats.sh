#!/usr/bin/env bash
# A private NATS server with JetStream for tests and the README: its own
# 127.0.0.1 port and JetStream store under the run dir (a restart keeps the
# streams and what they acknowledged). Uses the machine's nats-server
# (installed if missing).
#
#   scripts/nats.sh start | stop | status
#
# Environment: SLUICE_NATS_PORT (default 23422), SLUICE_RUN_DIR (default .run).
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
    PATH=$PATH:/usr/sbin nohup nats-server -a 127.0.0.1 -p "$PORT" -js -sd "$DIR/jetstream" \
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
