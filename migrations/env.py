"""Alembic environment for jwt_outbound's own table.

A host application runs these revisions in-process with ``jwt_outbound.migrate(...)``, which
hands its connection over in ``config.attributes["connection"]``. From a checkout,
``alembic upgrade head`` reads ``sqlalchemy.url``, else ``$JWT_OUTBOUND_DATABASE_URL``.
"""

from __future__ import annotations

from logging.config import fileConfig
from typing import Any

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection

from jwt_outbound._migrate import include_object
from jwt_outbound._store.engines import create_sync_engine, parse_url, sync_url
from jwt_outbound._store.schema import VERSION_TABLE, metadata
from jwt_outbound._store.sql import default_database_url

config = context.config

OPTIONS: dict[str, Any] = {
    "target_metadata": metadata,
    "version_table": VERSION_TABLE,
    "include_object": include_object,
    "compare_type": True,
    "render_as_batch": True,  # SQLite cannot ALTER most things; batch mode copies the table
}


def _url() -> str:
    return config.get_main_option("sqlalchemy.url") or default_database_url()


def run_offline() -> None:
    url = sync_url(parse_url(_url()))
    context.configure(url=url, literal_binds=True, **OPTIONS)
    with context.begin_transaction():
        context.run_migrations()


def run_with(connection: Connection) -> None:
    context.configure(connection=connection, **OPTIONS)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_with(connection)
        return
    engine = create_sync_engine(parse_url(_url()), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            run_with(connection)
    finally:
        engine.dispose()


if config.config_file_name is not None and "connection" not in config.attributes:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

if context.is_offline_mode():
    run_offline()
else:
    run_online()
