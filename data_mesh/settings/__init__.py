"""Settings from the environment (`DATA_MESH_*`), how `config show` prints them, and
secret references.
"""
