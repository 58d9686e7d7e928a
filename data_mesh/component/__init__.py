"""The Dagster side: the data_mesh component, its asset and check specs, step runtime
and automation.
"""
