"""Schema migrations, run programmatically so an installed package can migrate
itself: every service calls upgrade(url) at start.

    python -m services.common.store.migrate --db sqlite:///data/vp.db
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, func, select

from services.common.store.engine import create_engine_for

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Arbitrary constant naming the PostgreSQL advisory lock that serializes upgrades.
MIGRATION_LOCK_KEY = 0x5650_4D49_4752  # "VPMIGR"


def alembic_config(connection: Connection | None = None) -> Config:
    """A Config without alembic.ini. The connection travels in attributes, not
    as sqlalchemy.url, because ConfigParser would mangle %-escapes in URLs."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def heads() -> list[str]:
    return list(ScriptDirectory.from_config(alembic_config()).get_heads())


@contextmanager
def migration_connection(engine: Engine) -> Iterator[Connection]:
    """A connection inside a transaction that excludes other upgraders.

    Two services starting together would otherwise both see an empty database
    and both try to create the tables. On SQLite the engine opens write
    transactions with BEGIN IMMEDIATE, so the second upgrader waits at BEGIN
    (busy_timeout) and then finds the schema at head. PostgreSQL has
    transactional DDL, so an advisory lock held to commit does the same.
    """
    with engine.connect() as conn, conn.begin():
        if conn.dialect.name == "postgresql":
            conn.execute(select(func.pg_advisory_xact_lock(MIGRATION_LOCK_KEY)))
        yield conn


def upgrade_engine(engine: Engine, revision: str = "head") -> None:
    with migration_connection(engine) as conn:
        command.upgrade(alembic_config(conn), revision)


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at url to revision; a no-op when already there."""
    engine = create_engine_for(url)
    try:
        upgrade_engine(engine, revision)
    finally:
        engine.dispose()


def current_revision(url: str) -> str | None:
    """The revision the database is at, None if never migrated."""
    engine = create_engine_for(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def new_revision(url: str, message: str) -> None:
    """Autogenerate a revision from schema.py against a database at head (for developers)."""
    engine = create_engine_for(url)
    try:
        with migration_connection(engine) as conn:
            command.revision(alembic_config(conn), message=message, autogenerate=True)
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.common.store.migrate", description=__doc__)
    parser.add_argument("--db", default=os.environ.get("VP_DB_URL"), help="database URL (default: $VP_DB_URL)")
    parser.add_argument("--revision", default="head", help="target revision (default: head)")
    parser.add_argument("--new-revision", metavar="MESSAGE", help="autogenerate a new revision instead of upgrading")
    args = parser.parse_args(argv)
    if not args.db:
        parser.error("no database: pass --db URL or set VP_DB_URL")
    if args.new_revision:
        new_revision(args.db, args.new_revision)
        return 0
    upgrade(args.db, args.revision)
    print(f"database at revision {current_revision(args.db)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
