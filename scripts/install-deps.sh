#!/usr/bin/env bash
# Installs what sluice's scripts need and the machine lacks: MariaDB server
# and client, ZooKeeper (for high availability and its tests; Debian packages),
# a C toolchain and pip (the Kafka producer and its test broker) and the Rust
# lint tools.
set -euo pipefail
need_apt=()
command -v mariadb >/dev/null 2>&1 || need_apt+=(mariadb-client)
{ command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ]; } || need_apt+=(mariadb-server)
command -v mariadb-binlog >/dev/null 2>&1 || need_apt+=(mariadb-client)
command -v flock >/dev/null 2>&1 || need_apt+=(util-linux)
[ -f /usr/share/java/zookeeper.jar ] || need_apt+=(zookeeper)
command -v java >/dev/null 2>&1 || need_apt+=(default-jre-headless)
# The Kafka producer builds the bundled librdkafka (C); the test broker's
# binary is fetched with pip (scripts/kafka.sh).
command -v cc >/dev/null 2>&1 || need_apt+=(build-essential)
command -v make >/dev/null 2>&1 || need_apt+=(make)
command -v perl >/dev/null 2>&1 || need_apt+=(perl)
python3 -m pip --version >/dev/null 2>&1 || need_apt+=(python3-pip)
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
# Private RabbitMQ and NATS servers for the producers' tests, and an
# independent AMQP client (amqp-tools) that reads back what sluice published.
[ -x /usr/sbin/rabbitmq-server ] || need_apt+=(rabbitmq-server)
command -v amqp-consume >/dev/null 2>&1 || need_apt+=(amqp-tools)
{ command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ]; } || need_apt+=(nats-server)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing: ${need_apt[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}"
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is missing: install the Rust toolchain (https://rustup.rs) first" >&2
  exit 1
fi
cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
cargo clippy --version >/dev/null 2>&1 || rustup component add clippy
