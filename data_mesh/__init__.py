"""data_mesh: metadata-driven data mesh on Azure with Dagster."""

__version__ = "0.1.0"
