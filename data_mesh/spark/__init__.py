"""Spark SQL text built from metadata, and Spark settings scoped to one piece of work."""
