"""The project's components, one folder each (`dg list defs`): `mesh/` is the data mesh of the
metadata store `DATA_MESH_*` settings name."""
