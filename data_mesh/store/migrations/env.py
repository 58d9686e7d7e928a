"""Alembic environment: migrations run on the connection `data_mesh.store.database` passes."""

from __future__ import annotations

from alembic import context

from data_mesh.store.schema import metadata_obj

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata_obj, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
