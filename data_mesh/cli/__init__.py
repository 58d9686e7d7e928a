"""The `data-mesh` command: what is data_mesh's own (init, load, validate, ddz, quality,
runs, config, generators).
"""
