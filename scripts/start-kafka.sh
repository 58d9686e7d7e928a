#!/usr/bin/env bash
# Starts a single-node Apache Kafka (KRaft: broker and controller in one JVM, no ZooKeeper) for
# the integration tests, from the jars scripts/setup.sh put in .tools/kafka/libs. Prints the
# bootstrap address (host:port) on its last line. Already running: prints it and does nothing.
#   DATA_MESH_KAFKA_PORT             the PLAINTEXT listener on 127.0.0.1 (9092; unset: the first
#                                    free one from 9092 on, so another broker on it is no error)
#   DATA_MESH_KAFKA_CONTROLLER_PORT  the controller's listener on 127.0.0.1 (the port above + 1)
#   DATA_MESH_KAFKA_HOME             its config, log, pid file and data (.tools/kafka/data)
#   DATA_MESH_KAFKA_START_TIMEOUT    seconds to wait for it (90)
# Test-only settings (replication factor 1, small heap); local only. scripts/stop-kafka.sh stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
port="${DATA_MESH_KAFKA_PORT:-9092}"
controller_port="${DATA_MESH_KAFKA_CONTROLLER_PORT:-$((port + 1))}"
home="${DATA_MESH_KAFKA_HOME:-.tools/kafka/data}"
timeout="${DATA_MESH_KAFKA_START_TIMEOUT:-90}"
libs="$PWD/.tools/kafka/libs"
if [ ! -f "$libs/.version" ]; then
  echo "start-kafka: $libs is missing: run scripts/setup.sh" >&2
  exit 1
fi
mkdir -p "$home"
home="$(cd "$home" && pwd)"
pid_file="$home/kafka.pid"
log="$home/server.log"

accepts() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# The broker of this home, if it runs: its pid.
running_pid() {
  local pid
  pid=$(cat "$pid_file" 2>/dev/null) || return 1
  [ -n "$pid" ] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null \
    | grep -qF "kafka.Kafka $home/server.properties" && echo "$pid"
}
started() { grep -q "Kafka Server started" "$log" 2>/dev/null; }

if pid=$(running_pid); then
  # The port it was started with, whatever is asked now.
  port=$(sed -n 's|^advertised.listeners=PLAINTEXT://127.0.0.1:\([0-9]*\)$|\1|p' "$home/server.properties")
  controller_port=$(sed -n 's|^controller.quorum.voters=1@127.0.0.1:\([0-9]*\)$|\1|p' "$home/server.properties")
  if accepts "$port" && started; then
    echo "127.0.0.1:$port"
    exit 0
  fi
  echo "start-kafka: the broker (pid $pid) runs; waiting for it" >&2
else
  rm -f "$pid_file"
  if [ -z "${DATA_MESH_KAFKA_PORT:-}" ] && [ -z "${DATA_MESH_KAFKA_CONTROLLER_PORT:-}" ]; then
    # Another process (another clone's broker) on the default ports: take the next free pair.
    while accepts "$port" || accepts "$controller_port"; do
      port=$((port + 2))
      controller_port=$((port + 1))
      if [ "$port" -gt 9190 ]; then
        echo "start-kafka: no free port pair from 9092 to 9191" >&2
        exit 1
      fi
    done
  fi
  for p in "$port" "$controller_port"; do
    if accepts "$p"; then
      echo "start-kafka: 127.0.0.1:$p is taken by another process (not the broker of $home)" >&2
      exit 1
    fi
  done
  # Written at each start: a changed port is taken up by the next start.
  cat >"$home/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$home/kraft-logs
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
EOF
  cat >"$home/log4j2.properties" <<'EOF'
# To server.log (stdout, redirected); Kafka's INFO chatter only from its startup and shutdown.
appender.out.type=Console
appender.out.name=out
appender.out.layout.type=PatternLayout
appender.out.layout.pattern=[%d] %p %m (%c)%n
rootLogger.level=WARN
rootLogger.appenderRef.out.ref=out
logger.server.name=kafka.server.KafkaRaftServer
logger.server.level=INFO
EOF
  if [ ! -f "$home/kraft-logs/meta.properties" ]; then
    cluster_id=$(java -cp "$libs/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)
    format_log=$(java -Dlog4j2.configurationFile="$home/log4j2.properties" -cp "$libs/*" \
      kafka.tools.StorageTool format -t "$cluster_id" -c "$home/server.properties" 2>&1) \
      || { printf '%s\n' "$format_log" >&2; exit 1; }
  fi
  # setsid: its own session, so a Ctrl-C in the terminal that started it does not reach it.
  setsid java -Xms128m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -Djava.awt.headless=true -Dlog4j2.configurationFile="$home/log4j2.properties" \
    -cp "$libs/*" kafka.Kafka "$home/server.properties" >"$log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$pid_file"
fi

deadline=$((SECONDS + timeout))
until accepts "$port" && started; do
  if ! kill -0 "$pid" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
    if kill -0 "$pid" 2>/dev/null; then
      echo "start-kafka: not ready after ${timeout}s; stopping it" >&2
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 40); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
      done
      if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" || true; fi
    else
      echo "start-kafka: the broker exited" >&2
    fi
    rm -f "$pid_file"
    echo "--- the end of $log:" >&2
    tail -n 40 "$log" >&2 || true
    exit 1
  fi
  sleep 0.5
done
echo "127.0.0.1:$port"
