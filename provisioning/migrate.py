"""Versioned schema migrations: provisioning/migrations/NNNN_name.sql, applied in order.

Each file runs once, in its own transaction, and is recorded in schema_migrations.
A session-level advisory lock makes concurrent or repeated runs safe.
"""
from __future__ import annotations

from pathlib import Path

import psycopg

MIGRATIONS = Path(__file__).with_name("migrations")
# arbitrary constant shared by every tollgate process that migrates
LOCK_KEY = 0x7011_6A7E

_TABLE = """CREATE TABLE IF NOT EXISTS schema_migrations (
    name       text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now())"""


def migration_files(folder: Path = MIGRATIONS) -> list[Path]:
    """The migration files in the order they apply (by their numeric prefix)."""
    return sorted(folder.glob("[0-9][0-9][0-9][0-9]_*.sql"))


def migrate(dsn: str, folder: Path = MIGRATIONS) -> list[str]:
    """Apply every pending migration; returns the names applied by this call."""
    applied: list[str] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        try:
            conn.execute(_TABLE)
            done = {row[0] for row in conn.execute("SELECT name FROM schema_migrations")}
            for path in migration_files(folder):
                if path.stem not in done:
                    _apply(conn, path)
                    applied.append(path.stem)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    return applied


def _apply(conn: psycopg.Connection, path: Path) -> None:
    """Run one migration file and record it, all or nothing."""
    with conn.transaction():
        # the file is ours, not caller input: several statements, no parameters
        conn.execute(path.read_text().encode())
        conn.execute("INSERT INTO schema_migrations (name) VALUES (%s)", (path.stem,))


def pending(dsn: str, folder: Path = MIGRATIONS) -> list[str]:
    """Names of migrations not yet applied (the table may not exist yet)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        exists = conn.execute("SELECT to_regclass('schema_migrations')").fetchone()
        done: set[str] = set()
        if exists and exists[0]:
            done = {row[0] for row in conn.execute("SELECT name FROM schema_migrations")}
    return [p.stem for p in migration_files(folder) if p.stem not in done]
