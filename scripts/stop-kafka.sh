#!/usr/bin/env bash
# Stops the broker scripts/start-kafka.sh started (same DATA_MESH_KAFKA_HOME); its data stays.
# DATA_MESH_KAFKA_WIPE=1 also deletes the data (topics, offsets, the cluster id).
set -euo pipefail
cd "$(dirname "$0")/.."
home="${DATA_MESH_KAFKA_HOME:-.tools/kafka/data}"
[ -d "$home" ] || exit 0
home="$(cd "$home" && pwd)"
pid_file="$home/kafka.pid"
pid=$(cat "$pid_file" 2>/dev/null || true)
if [ -n "$pid" ] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null \
  | grep -qF "kafka.Kafka $home/server.properties"; then
  kill "$pid"
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "stop-kafka: the broker (pid $pid) did not stop in 30s; killing it" >&2
    kill -9 "$pid" 2>/dev/null || true
  fi
fi
rm -f "$pid_file"
if [ "${DATA_MESH_KAFKA_WIPE:-0}" = 1 ]; then
  rm -rf "$home/kraft-logs" "$home/server.log" "$home/server.properties" "$home/log4j2.properties"
fi
