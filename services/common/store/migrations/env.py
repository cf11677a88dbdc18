"""Alembic environment for the store. It only runs through
services.common.store.migrate, which passes an open connection already inside
the transaction that serializes concurrent upgrades; there is no alembic.ini
and no offline (--sql) mode."""

from __future__ import annotations

from alembic import context

from services.common.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations via services.common.store.migrate.upgrade(url), not the alembic CLI")

context.configure(
    connection=connection,
    target_metadata=metadata,
    compare_type=True,
    # SQLite cannot ALTER most things in place; batch mode copies the table.
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
