#!/usr/bin/env bash
# Pre-creates Sendguard's topics on a Kafka cluster, with the specs the
# services would use (pkg/topics/topics.go) plus production settings. The
# services create missing topics at start (SENDGUARD_PARTITIONS,
# SENDGUARD_REPLICATION) and never change existing ones, so topics created
# here win.
#
#   BOOTSTRAP=broker-1:9092 PARTITIONS=24 REPLICATION=3 ./create-topics.sh
#
# Needs kafka-topics.sh from the Kafka distribution on PATH (or KAFKA_TOPICS
# pointing at it). EXTRA_ARGS is passed on, e.g.
# EXTRA_ARGS="--command-config client.properties" for TLS/SASL.
set -euo pipefail

BOOTSTRAP=${BOOTSTRAP:?set BOOTSTRAP=host:port of a broker}
PARTITIONS=${PARTITIONS:-12}
REPLICATION=${REPLICATION:-3}
KAFKA_TOPICS=${KAFKA_TOPICS:-kafka-topics.sh}
# acks=all is only durable with at least 2 in-sync replicas.
MIN_ISR=${MIN_ISR:-$(( REPLICATION > 1 ? 2 : 1 ))}
# Ingest envelopes reach the 5 MiB body limit and producers batch up to
# 16 MiB per request.
MAX_MESSAGE_BYTES=16777216
DAY=86400000

create() { # name partitions configs...
  local name=$1 parts=$2; shift 2
  local cfg=(--config "min.insync.replicas=$MIN_ISR" --config "max.message.bytes=$MAX_MESSAGE_BYTES")
  for c in "$@"; do cfg+=(--config "$c"); done
  echo "topic $name: $parts partitions, replication $REPLICATION, $*"
  # shellcheck disable=SC2086 # EXTRA_ARGS is a list of words on purpose
  "$KAFKA_TOPICS" --bootstrap-server "$BOOTSTRAP" ${EXTRA_ARGS:-} --create --if-not-exists \
    --topic "$name" --partitions "$parts" --replication-factor "$REPLICATION" "${cfg[@]}"
}

create sg.raw.v1           "$PARTITIONS" cleanup.policy=delete "retention.ms=$((7 * DAY))"
create sg.events.v1        "$PARTITIONS" cleanup.policy=delete "retention.ms=$((35 * DAY))"
create sg.scoped-events.v1 "$PARTITIONS" cleanup.policy=delete "retention.ms=$((7 * DAY))"
create sg.metrics.v1       "$PARTITIONS" cleanup.policy=delete "retention.ms=$((7 * DAY))"
create sg.decisions.v1     "$PARTITIONS" cleanup.policy=delete "retention.ms=$((35 * DAY))"
create sg.control.v1       "$PARTITIONS" cleanup.policy=delete "retention.ms=$((35 * DAY))"
create sg.control-state.v1 "$PARTITIONS" cleanup.policy=compact
create sg.window-state.v1  "$PARTITIONS" cleanup.policy=compact
create sg.admit-state.v1   "$PARTITIONS" cleanup.policy=compact
create sg.rules-state.v1   "$PARTITIONS" cleanup.policy=compact
create sg.dlq.v1           1             cleanup.policy=delete "retention.ms=$((35 * DAY))"
