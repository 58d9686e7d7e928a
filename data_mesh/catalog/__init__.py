"""Typed data products: models, resolution of store rows, configuration, product files
and validation. No Dagster, no Spark, no I/O.
"""
