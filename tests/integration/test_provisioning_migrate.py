"""Schema migrations on a real PostgreSQL: each applies once, in order, and is recorded."""
from __future__ import annotations

import threading

import psycopg
import pytest

from provisioning.migrate import migrate, migration_files, pending

pytestmark = pytest.mark.integration


def test_every_migration_applies_once_and_is_recorded(pg_dsn):
    names = [p.stem for p in migration_files()]
    assert names[:2] == ["0001_core", "0002_billing"]
    assert pending(pg_dsn) == names

    assert migrate(pg_dsn) == names
    assert migrate(pg_dsn) == []
    assert pending(pg_dsn) == []
    with psycopg.connect(pg_dsn) as conn:
        recorded = [r[0] for r in conn.execute("SELECT name FROM schema_migrations ORDER BY name")]
        tables = {r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert recorded == names
    assert {"customers", "accounts", "aliases", "ids", "products", "tariffs", "rates",
            "rating_entries", "voice_applications", "access_numbers", "vouchers", "xdrs",
            "voicemail_messages", "balance_operations"} <= tables


def test_concurrent_runs_apply_each_migration_exactly_once(pg_dsn):
    results: list[list[str]] = []
    threads = [threading.Thread(target=lambda: results.append(migrate(pg_dsn))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    applied = sorted(name for result in results for name in result)
    assert applied == sorted(p.stem for p in migration_files())


def test_a_failing_migration_leaves_nothing_behind(pg_dsn, tmp_path):
    (tmp_path / "0001_ok.sql").write_text("CREATE TABLE ok (id int);")
    (tmp_path / "0002_bad.sql").write_text("CREATE TABLE half (id int); SELECT no_such_function();")
    with pytest.raises(psycopg.errors.UndefinedFunction):
        migrate(pg_dsn, tmp_path)
    with psycopg.connect(pg_dsn) as conn:
        assert [r[0] for r in conn.execute("SELECT name FROM schema_migrations")] == ["0001_ok"]
        assert conn.execute("SELECT to_regclass('half')").fetchone() == (None,)


def test_account_and_alias_ids_share_one_namespace(pg_dsn):
    migrate(pg_dsn)
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO customers (name, currency) VALUES ('c', 'USD');"
                     "INSERT INTO products (name, currency) VALUES ('p', 'USD');"
                     "INSERT INTO ids VALUES ('100', 'account');"
                     "INSERT INTO accounts (id, customer_id, product_id) VALUES ('100', 1, 1)")
        # the database itself refuses an alias spelled like an account, whoever inserts it
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("INSERT INTO ids VALUES ('100', 'alias')")
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            conn.execute("INSERT INTO aliases (id, account_id) VALUES ('100', '100')")
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("INSERT INTO rates (tariff_id, prefix, price_first, price_next,"
                         " interval_first, interval_next) SELECT 1, '1', 0, 0, 0, 60")
