#!/usr/bin/env bash
# From a fresh clone: set up, start PostgreSQL and a Kafka broker, then run lint, type checks and the whole test
# suite (Spark, H2, PostgreSQL and Azurite integration tests included). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA_MESH_WITH_POSTGRES=1 DATA_MESH_WITH_AZURITE=1 DATA_MESH_WITH_KAFKA=1 DATA_MESH_WITH_DEPLOY_TOOLS=1 \
  bash scripts/setup.sh
export DATA_MESH_TEST_PG_URL="${DATA_MESH_TEST_PG_URL:-$(bash scripts/start-postgres.sh | tail -n 1)}"
# The Kafka broker (KRaft, from Maven by setup.sh), for the Kafka target's tests.
if [ -z "${DATA_MESH_TEST_KAFKA_BOOTSTRAP:-}" ]; then
  DATA_MESH_TEST_KAFKA_BOOTSTRAP=$(bash scripts/start-kafka.sh | tail -n 1)
fi
export DATA_MESH_TEST_KAFKA_BOOTSTRAP
.venv/bin/ruff check data_mesh data_mesh_tests benchmarks
.venv/bin/ruff format --check data_mesh data_mesh_tests benchmarks
.venv/bin/mypy data_mesh benchmarks
.venv/bin/data-mesh ddl --check
# -rs: why each skipped test was skipped; --durations: the slowest tests, to keep them in check.
.venv/bin/python -m pytest -q -p no:cacheprovider -rs --durations=15 "$@"
