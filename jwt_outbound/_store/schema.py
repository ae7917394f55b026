"""The token table, and SQL for the database's own clock.

The Alembic revisions in ``migrations/`` (``jwt_outbound/migrations`` in a wheel) create exactly this table; a test compares
the two.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

__all__ = ["VERSION_TABLE", "db_epoch", "metadata", "tokens", "utc_now"]

#: Our Alembic version table: never the host application's ``alembic_version``.
VERSION_TABLE = "jwt_outbound_alembic_version"

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class _Utf8Binary(mysql.VARBINARY):
    """A VARBINARY column that takes and gives ``str`` (stored as UTF-8).

    Parameters stay ``str``: the server compares them with the column byte for byte, and bytes
    parameters break aiomysql with PyMySQL >= 1.2.3 (aio-libs/aiomysql#1080).
    """

    def bind_processor(self, dialect: sa.Dialect) -> None:
        return None

    def result_processor(self, dialect: sa.Dialect, coltype: object) -> Any:
        def process(value: Any) -> Any:
            return value.decode("utf-8") if isinstance(value, bytes) else value

        return process


# MySQL/MariaDB compare VARCHAR case-insensitively and ignore trailing spaces, which would let
# tenant "Acme" read the row of "acme"; a VARBINARY compares exactly, as PostgreSQL and SQLite
# do with text.
TENANT_TYPE = sa.String(128).with_variant(_Utf8Binary(512), "mysql", "mariadb")

tokens = sa.Table(
    "jwt_outbound_tokens",
    metadata,
    sa.Column("tenant", TENANT_TYPE, primary_key=True),
    sa.Column("token", sa.Text(), nullable=False),
    sa.Column("token_exp", sa.BigInteger(), nullable=True),
    sa.Column("refresh_token", sa.Text(), nullable=True),
    sa.Column("refresh_token_exp", sa.BigInteger(), nullable=True),
    sa.Column("date", sa.BigInteger(), nullable=False),
    # JSON text: the same column type on every backend, and nothing here is queried by key.
    sa.Column("extra", sa.Text(), nullable=False),
    sa.Column("version", sa.BigInteger(), nullable=False),
    sa.Column("lease_owner", sa.String(64), nullable=True),
    # Unix seconds by the database's clock (``db_epoch()``), so that workers on machines with
    # skewed clocks still agree on when a lease runs out.
    sa.Column("lease_until", sa.Double(), nullable=True),
    sa.Column(
        "created_at",
        sa.DateTime(timezone=True),
        nullable=False,
        server_default=sa.func.current_timestamp(),
    ),
    sa.Column(
        "updated_at",
        sa.DateTime(timezone=True),
        nullable=False,
        server_default=sa.func.current_timestamp(),
    ),
    mysql_engine="InnoDB",
    mysql_charset="utf8mb4",
)


class db_epoch(FunctionElement[float]):
    """The database server's current time as Unix seconds, with sub-second precision."""

    type = sa.Double()
    inherit_cache = True
    name = "db_epoch"


@compiles(db_epoch)
def _db_epoch_default(element: db_epoch, compiler: SQLCompiler, **kw: Any) -> str:
    raise sa.exc.CompileError(
        f"jwt_outbound has no database clock for {compiler.dialect.name!r}: "
        "use SQLite, PostgreSQL, MySQL or MariaDB"
    )


@compiles(db_epoch, "postgresql")
def _db_epoch_postgresql(element: db_epoch, compiler: SQLCompiler, **kw: Any) -> str:
    # statement_timestamp(): moves on every statement, unlike now() inside a long transaction.
    return "CAST(EXTRACT(EPOCH FROM statement_timestamp()) AS DOUBLE PRECISION)"


@compiles(db_epoch, "mysql")
@compiles(db_epoch, "mariadb")
def _db_epoch_mysql(element: db_epoch, compiler: SQLCompiler, **kw: Any) -> str:
    # UTC_TIMESTAMP: UNIX_TIMESTAMP(NOW()) would repeat an hour when the session's zone has DST.
    return "(TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', UTC_TIMESTAMP(6)) / 1000000.0)"


@compiles(db_epoch, "sqlite")
def _db_epoch_sqlite(element: db_epoch, compiler: SQLCompiler, **kw: Any) -> str:
    # julianday() has millisecond precision; 2440587.5 is the Julian day of 1970-01-01.
    return "((julianday('now') - 2440587.5) * 86400.0)"


class utc_now(FunctionElement[Any]):
    """The database server's current time, for ``created_at`` / ``updated_at``."""

    type = sa.DateTime(timezone=True)
    inherit_cache = True
    name = "utc_now"


@compiles(utc_now)
def _utc_now_default(element: utc_now, compiler: SQLCompiler, **kw: Any) -> str:
    return "CURRENT_TIMESTAMP"


@compiles(utc_now, "mysql")
@compiles(utc_now, "mariadb")
def _utc_now_mysql(element: utc_now, compiler: SQLCompiler, **kw: Any) -> str:
    # DATETIME has no zone; CURRENT_TIMESTAMP would be the session's local time.
    return "UTC_TIMESTAMP()"
