"""Alembic environment: runs on the engine handed over by `newsletter.db`."""

from alembic import context
from sqlmodel import SQLModel

import newsletter.migrations.schema  # noqa: F401  (registers every table on SQLModel.metadata)

# Tables that other libraries own (APScheduler's job store) are not ours to migrate.
FOREIGN_TABLES = {"apscheduler_jobs"}


def include_object(obj, name, type_, reflected, compare_to):
    """Leave tables we do not own out of autogenerate and `check`."""
    return not (type_ == "table" and name in FOREIGN_TABLES)


def run_migrations() -> None:
    """Migrate with the engine from `alembic_config()`; render_as_batch keeps SQLite happy."""
    engine = context.config.attributes["engine"]
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=SQLModel.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            include_object=include_object,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations()
