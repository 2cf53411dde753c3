"""Alembic environment: runs on the engine handed over by `ledger.storage.db.migrate`."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

from ledger.storage.schema import ActorRow  # noqa: F401  (registers every table on the metadata)

engine = context.config.attributes["engine"]
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=SQLModel.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
