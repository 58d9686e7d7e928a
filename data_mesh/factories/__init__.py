"""Metadata models -> Dagster objects. Pure functions: no I/O here."""
