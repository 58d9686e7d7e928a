"""Dagster resources for the lake, the DDZ and Spark, and the resource set per environment."""
