"""`.properties` query files and the Spark execution of transformations. No Dagster."""
