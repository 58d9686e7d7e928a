"""The DDZ writer and its SQL dialects. Knows Spark and JDBC, not Dagster."""
