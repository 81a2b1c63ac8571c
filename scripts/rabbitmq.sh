#!/usr/bin/env bash
# A private RabbitMQ for tests and the README: its own node name, 127.0.0.1
# port, data directory and Erlang cookie under the run dir (the machine's own
# broker is left alone). Uses the machine's rabbitmq-server (installed if
# missing). The broker starts with the test topology of
# scripts/rabbitmq-definitions.json: exchanges sluice.test.topic (topic,
# durable) and sluice.test.fanout, and durable queues bound to them.
#
#   scripts/rabbitmq.sh start | stop | status
#   scripts/rabbitmq.sh ctl ARGS...     # rabbitmqctl against this broker
#
# Environment: SLUICE_RABBITMQ_PORT (default 23672), SLUICE_RUN_DIR (default .run).
# TLS (the certificates of scripts/tls.sh): SLUICE_RABBITMQ_TLS=server | expired |
# wronghost makes the port speak AMQPS only, showing that certificate;
# SLUICE_TLS_CLIENT_AUTH=yes also requires a client certificate of the test CA.
# Unset: plain AMQP.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUN_DIR=${SLUICE_RUN_DIR:-$ROOT/.run}
PORT=${SLUICE_RABBITMQ_PORT:-23672}
DIR=$RUN_DIR/rabbitmq-$PORT
TLS=${SLUICE_RABBITMQ_TLS:-}
CERTS=$RUN_DIR/tls
BIN=/usr/lib/rabbitmq/bin

install_if_missing() {
  if [ ! -x "$BIN/rabbitmq-server" ]; then
    echo "installing rabbitmq-server..." >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq rabbitmq-server >&2
  fi
}

# Everything the broker and rabbitmqctl read comes from here: the machine's
# /etc/rabbitmq (node name, config) is not used.
node_env() {
  export HOME=$DIR
  export RABBITMQ_NODENAME=sluice$PORT@localhost
  export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
  export RABBITMQ_NODE_PORT=$PORT
  # Below the kernel's ephemeral range (32768-60999): a distribution port
  # in it can be taken by any outgoing connection's local port, and the
  # broker then dies at boot (erl_crash.dump, nothing on the AMQP port).
  export RABBITMQ_DIST_PORT=$((PORT - 2000))
  export RABBITMQ_CONF_ENV_FILE=$DIR/rabbitmq-env.conf
  export RABBITMQ_CONFIG_FILE=$DIR/rabbitmq.conf
  export RABBITMQ_ADVANCED_CONFIG_FILE=$DIR/advanced.config
  export RABBITMQ_ENABLED_PLUGINS_FILE=$DIR/enabled_plugins
  export RABBITMQ_MNESIA_BASE=$DIR/mnesia
  export RABBITMQ_LOG_BASE=$DIR/log
  export RABBITMQ_PID_FILE=$DIR/rabbitmq.pid
  export ERL_EPMD_ADDRESS=127.0.0.1
}

running() {
  [ -f "$DIR/rabbitmq.pid" ] && kill -0 "$(cat "$DIR/rabbitmq.pid")" 2>/dev/null
}

# The AMQP port answers the protocol header (the broker is ready, not only
# listening); over TLS when it speaks TLS.
amqp_ready() {
  python3 - "$PORT" "$TLS" "$CERTS" <<'PY'
import socket, ssl, sys
try:
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2)
    if sys.argv[2]:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.load_cert_chain(sys.argv[3] + "/client.pem", sys.argv[3] + "/client.key")
        s = ctx.wrap_socket(s)
    s.sendall(b"AMQP\x00\x00\x09\x01")
    sys.exit(0 if s.recv(1) == b"\x01" else 1)
except OSError:
    sys.exit(1)
PY
}

mkdir -p "$RUN_DIR"
exec 9>"$RUN_DIR/rabbitmq.lock"
flock 9

case "${1:-}" in
  start)
    install_if_missing
    if running && amqp_ready; then exit 0; fi
    mkdir -p "$DIR/log" "$DIR/mnesia"
    node_env
    : >"$DIR/rabbitmq-env.conf"
    echo "[]." >"$DIR/enabled_plugins"
    echo "[]." >"$DIR/advanced.config"
    if [ -n "$TLS" ]; then
      "$ROOT/scripts/tls.sh" >/dev/null
      [ -f "$CERTS/$TLS.pem" ] || { echo "SLUICE_RABBITMQ_TLS=$TLS: no such certificate in $CERTS" >&2; exit 2; }
      peer=false
      [ "${SLUICE_TLS_CLIENT_AUTH:-no}" = yes ] && peer=true
      listeners="listeners.tcp = none
listeners.ssl.default = 127.0.0.1:$PORT
ssl_options.cacertfile = $CERTS/ca.pem
ssl_options.certfile = $CERTS/$TLS.pem
ssl_options.keyfile = $CERTS/$TLS.key
ssl_options.verify = verify_peer
ssl_options.fail_if_no_peer_cert = $peer"
    else
      listeners="listeners.tcp.default = 127.0.0.1:$PORT"
    fi
    cat >"$DIR/rabbitmq.conf" <<EOF
$listeners
loopback_users = none
load_definitions = $ROOT/scripts/rabbitmq-definitions.json
disk_free_limit.absolute = 50MB
log.console = false
log.file.level = info
# Small, so that a test can exceed it with one row.
max_message_size = 1048576
EOF
    # Boots once more if the first boot dies (a port taken for a moment, a
    # starved VM on a loaded machine); a broker that never answers fails
    # with its logs on stderr, so a CI log says why.
    for attempt in 1 2; do
      # From its own directory: a crash dump (erl_crash.dump) lands there.
      (cd "$DIR" && exec nohup "$BIN/rabbitmq-server" >"$DIR/server.log" 2>&1 9>&-) &
      launcher=$!
      echo $launcher >"$DIR/launcher.pid"
      deadline=$((SECONDS + 150))
      while [ $SECONDS -lt $deadline ] && kill -0 "$launcher" 2>/dev/null; do
        if amqp_ready; then exit 0; fi
        sleep 0.2
      done
      if amqp_ready; then exit 0; fi
      echo "rabbitmq on 127.0.0.1:$PORT: boot $attempt did not answer; server.log:" >&2
      tail -n 30 "$DIR/server.log" >&2 || true
      tail -n 30 "$DIR"/log/*.log >&2 2>/dev/null || true
      kill "$launcher" 2>/dev/null || true
      running && kill -9 "$(cat "$DIR/rabbitmq.pid")" 2>/dev/null || true
      wait "$launcher" 2>/dev/null || true
    done
    echo "rabbitmq did not answer on 127.0.0.1:$PORT; see $DIR/server.log and $DIR/log" >&2
    exit 1
    ;;
  stop)
    node_env
    if running; then
      pid=$(cat "$DIR/rabbitmq.pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    ;;
  status)
    running && amqp_ready && echo "rabbitmq running on 127.0.0.1:$PORT" || { echo "rabbitmq not running"; exit 1; }
    ;;
  ctl)
    shift
    node_env
    exec "$BIN/rabbitmqctl" -n "$RABBITMQ_NODENAME" "$@"
    ;;
  *)
    echo "usage: $0 start|stop|status|ctl ARGS..." >&2
    exit 2
    ;;
esac
