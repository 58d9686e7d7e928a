"""The metadata store: schema, typed rows, loading and validation. No Dagster, no Spark."""
