#!/usr/bin/env bash
# A private 3-node ZooKeeper ensemble on 127.0.0.1 for tests and the README
# (Debian's `zookeeper` package; Java must be present). Admin server off.
#
#   scripts/zookeeper.sh start [N...]   start nodes (default all 3); waits for a quorum
#                                       when all are started
#   scripts/zookeeper.sh stop [N...]    stop nodes (default all)
#   scripts/zookeeper.sh wipe           stop all and delete their data (an ensemble that
#                                       "lost its data")
#   scripts/zookeeper.sh freeze N | thaw N   SIGSTOP / SIGCONT one node
#   scripts/zookeeper.sh status         mode of each node
#   scripts/zookeeper.sh connect        print the connect string
#
# Environment: SLUICE_ZK_PORT (client port of node 1, default 23181; node N
# listens on +N-1; quorum and election ports are +100 and +200), SLUICE_RUN_DIR
# (default .run in the repository).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUN_DIR=${SLUICE_RUN_DIR:-$ROOT/.run}
BASE=${SLUICE_ZK_PORT:-23181}
NODES=(1 2 3)

port() { echo $((BASE + $1 - 1)); }
dir() { echo "$RUN_DIR/zookeeper-$BASE/node$1"; }
pidfile() { echo "$(dir "$1")/zk.pid"; }

connect_string() {
  local s=""
  for n in "${NODES[@]}"; do s="$s${s:+,}127.0.0.1:$(port "$n")"; done
  echo "$s"
}

install_if_missing() {
  if [ ! -f /usr/share/java/zookeeper.jar ]; then
    echo "installing zookeeper (apt)..." >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q zookeeper >/dev/null
  fi
  command -v java >/dev/null || { echo "zookeeper needs java (apt-get install default-jre-headless)" >&2; exit 1; }
}

running() {
  local p
  p=$(cat "$(pidfile "$1")" 2>/dev/null) || return 1
  kill -0 "$p" 2>/dev/null
}

# Four-letter word to node N; prints the answer (empty if none).
fourlw() {
  timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$(port "$1"); printf '%s' '$2' >&3; cat <&3" 2>/dev/null || true
}

mode() { fourlw "$1" srvr | sed -n 's/^Mode: //p'; }

write_config() {
  local n=$1 d
  d=$(dir "$n")
  mkdir -p "$d/data" "$d/logs"
  echo "$n" >"$d/data/myid"
  {
    echo "tickTime=500"
    echo "initLimit=10"
    echo "syncLimit=4"
    echo "dataDir=$d/data"
    echo "clientPort=$(port "$n")"
    echo "clientPortAddress=127.0.0.1"
    echo "admin.enableServer=false"
    echo "4lw.commands.whitelist=srvr,ruok,mntr"
    echo "maxClientCnxns=200"
    echo "autopurge.purgeInterval=1"
    for m in "${NODES[@]}"; do
      echo "server.$m=127.0.0.1:$(( $(port "$m") + 100 )):$(( $(port "$m") + 200 ))"
    done
  } >"$d/zoo.cfg"
}

start_node() {
  local n=$1 d
  d=$(dir "$n")
  if running "$n"; then return 0; fi
  write_config "$n"
  if timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$(port "$n")" 2>/dev/null; then
    echo "port $(port "$n") is taken by another process; choose SLUICE_ZK_PORT" >&2
    exit 1
  fi
  (cd "$d" && exec setsid java -Xms32m -Xmx128m -XX:+UseSerialGC \
     -Dzookeeper.admin.enableServer=false -Dzookeeper.log.dir="$d/logs" \
     -Dzookeeper.root.logger=INFO,CONSOLE -Dzookeeper.jmx.log4j.disable=true \
     -cp "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar" \
     org.apache.zookeeper.server.quorum.QuorumPeerMain "$d/zoo.cfg" >"$d/logs/zookeeper.out" 2>&1 &
   echo $! >"$(pidfile "$n")")
}

stop_node() {
  local n=$1 p
  p=$(cat "$(pidfile "$n")" 2>/dev/null) || return 0
  kill -CONT "$p" 2>/dev/null || true
  kill "$p" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$p" 2>/dev/null || true
  rm -f "$(pidfile "$n")"
}

cmd=${1:-status}
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${NODES[@]}")

case "$cmd" in
  start)
    install_if_missing
    for n in "${targets[@]}"; do start_node "$n"; done
    # With a quorum possible, wait until the ensemble serves.
    for _ in $(seq 1 150); do
      up=0
      for n in "${targets[@]}"; do
        case "$(mode "$n")" in leader|follower|standalone) up=$((up + 1)) ;; esac
      done
      [ "$up" -eq ${#targets[@]} ] && { connect_string; exit 0; }
      if [ ${#targets[@]} -lt 2 ]; then connect_string; exit 0; fi
      sleep 0.2
    done
    echo "zookeeper ensemble did not form a quorum; see $(dir 1)/logs/zookeeper.out" >&2
    exit 1
    ;;
  stop) for n in "${targets[@]}"; do stop_node "$n"; done ;;
  wipe)
    for n in "${NODES[@]}"; do stop_node "$n"; rm -rf "$(dir "$n")/data"; done
    ;;
  freeze) kill -STOP "$(cat "$(pidfile "${targets[0]}")")" ;;
  thaw) kill -CONT "$(cat "$(pidfile "${targets[0]}")")" ;;
  status)
    for n in "${NODES[@]}"; do
      if running "$n"; then echo "node $n (127.0.0.1:$(port "$n")): $(mode "$n")"; else echo "node $n: stopped"; fi
    done
    ;;
  connect) connect_string ;;
  *) echo "usage: $0 start|stop|wipe|freeze N|thaw N|status|connect" >&2; exit 2 ;;
esac
