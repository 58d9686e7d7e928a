#!/usr/bin/env bash
# Starts the machine's PostgreSQL cluster for the integration tests and makes sure a test role
# and database exist. Prints the SQLAlchemy URL to use. Test-only credentials, local only.
set -euo pipefail
version=$(ls /usr/lib/postgresql | sort -n | tail -n 1)
if ! pg_lsclusters -h 2>/dev/null | grep -q "^$version main"; then
  pg_createcluster "$version" main >/dev/null
fi
pg_ctlcluster "$version" main start 2>/dev/null || true
for _ in $(seq 1 30); do
  pg_isready -h 127.0.0.1 -p 5432 -q && break
  sleep 1
done
psql_su() { su postgres -c "psql -v ON_ERROR_STOP=1 -qtA -c \"$1\""; }
if [ "$(psql_su "SELECT 1 FROM pg_roles WHERE rolname='data_mesh_test'")" != 1 ]; then
  psql_su "CREATE ROLE data_mesh_test LOGIN PASSWORD 'data_mesh_test' CREATEDB"
fi
# The secrets test creates (and drops) a role of its own with a one-off password.
psql_su "ALTER ROLE data_mesh_test CREATEROLE"
if [ "$(psql_su "SELECT 1 FROM pg_database WHERE datname='data_mesh_test'")" != 1 ]; then
  psql_su "CREATE DATABASE data_mesh_test OWNER data_mesh_test"
fi
echo "postgresql+psycopg://data_mesh_test:data_mesh_test@127.0.0.1:5432/data_mesh_test"
