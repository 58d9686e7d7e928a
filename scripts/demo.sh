#!/usr/bin/env bash
# From a fresh clone: set up, create the LOCAL metadata store, load the sample data products,
# generate CDZ sample data and materialize every product into the embedded DDZ (H2).
# ROWS sets the size of the sample fact tables (default 100000). KAFKA=1 also starts a local
# Kafka broker, so the mdm product's topic is published too (without it, that asset is left out).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA_MESH_WITH_KAFKA="${KAFKA:-0}" bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
if [ "${KAFKA:-0}" = 1 ]; then
  export DATA_MESH_KAFKA_URL="kafka://$(bash scripts/start-kafka.sh | tail -n 1)"
fi
data-mesh init
data-mesh load metadata/products
data-mesh validate
dg check defs   # the dg project loads: the component builds every definition from its state
data-mesh generate-sample-data --rows "${ROWS:-100000}"
data-mesh materialize --from 2026-11-14 --to 2026-11-20
echo
echo "Look at a DDZ table:   .venv/bin/data-mesh ddz show ddz.SOR1_PAYMENTS"
echo "Open the Dagster UI:   .venv/bin/data-mesh dev   (then http://127.0.0.1:3000)"
