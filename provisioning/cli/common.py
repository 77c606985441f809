"""What every command group shares: settings, connections, the write protocol, output."""
from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, TextIO

import psycopg
import redis
from psycopg import sql
from psycopg.rows import dict_row

from provisioning.loader import Changes, publish
from provisioning.validate import BadInput
from tollgate import redis_conn
from tollgate.config import Settings

EXIT_OK, EXIT_ERROR, EXIT_BAD_INPUT, EXIT_REDIS = 0, 1, 2, 3
Row = dict[str, Any]
Spec = dict[str, Any]
# a write: runs inside one transaction, returns the Redis changes and what to print
WriteFn = Callable[[psycopg.Connection], tuple[Changes, Any]]


class RedisUnavailable(Exception):
    """PostgreSQL committed but Redis could not be updated."""


@dataclass
class Context:
    """Resolved settings and output choices of one CLI run."""
    settings: Settings
    dsn: str
    redis_url: str | None = None
    json: bool = False
    out: TextIO = sys.stdout
    err: TextIO = sys.stderr

    def pg(self) -> psycopg.Connection:
        """Autocommit connection: writes open their own explicit transaction."""
        return psycopg.connect(self.dsn, autocommit=True, connect_timeout=5)

    def redis(self) -> redis.Redis:
        timeout = max(self.settings.redis_timeout_ms / 1000, 0.5)
        if self.redis_url:
            return redis.Redis.from_url(self.redis_url, socket_connect_timeout=timeout,
                                        socket_timeout=10)
        return redis_conn.client(self.settings, timeout=10, connect_timeout=timeout)


def write(ctx: Context, fn: WriteFn) -> int:
    """One PostgreSQL transaction, then Redis; Redis down after the commit exits 3."""
    with ctx.pg() as conn, conn.transaction():
        changes, result = fn(conn)
    emit(ctx, result)
    return push(ctx, changes)


def push(ctx: Context, changes: Changes) -> int:
    """Publish committed changes; on a Redis failure say so once and return 3."""
    try:
        client = ctx.redis()
        try:
            publish(client, changes)
        finally:
            client.close()
    except redis.RedisError as exc:
        ctx.err.write(f"tollgate: saved in PostgreSQL, but Redis is unreachable ({exc}); "
                      "run `tollgate resync`\n")
        return EXIT_REDIS
    return EXIT_OK


def read(ctx: Context, fn: Callable[[psycopg.Connection], Any]) -> int:
    """A read-only command: run fn, print what it returns."""
    with ctx.pg() as conn:
        emit(ctx, fn(conn))
    return EXIT_OK


# --- SQL helpers: table and column names come from our own code, values are parameters --

def fetch(conn: psycopg.Connection, query: str | sql.Composable,
          params: Iterable[Any] = ()) -> list[Row]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, tuple(params)).fetchall()  # type: ignore[arg-type]


def fetch_one(conn: psycopg.Connection, query: str | sql.Composable,
              params: Iterable[Any] = ()) -> Row | None:
    rows = fetch(conn, query, params)
    return rows[0] if rows else None


def insert(conn: psycopg.Connection, table: str, values: Spec, returning: str = "id") -> Any:
    """INSERT one row; returns the value of the returning column."""
    query = sql.SQL("INSERT INTO {} ({}) VALUES ({}) RETURNING {}").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, values)),
        sql.SQL(", ").join(sql.Placeholder() * len(values)), sql.Identifier(returning))
    row = conn.execute(query, tuple(values.values())).fetchone()
    assert row is not None
    return row[0]


def update(conn: psycopg.Connection, table: str, key_col: str, key: Any, values: Spec) -> None:
    """UPDATE one row by key (nothing to do when values is empty)."""
    update_where(conn, table, {key_col: key}, values)


def update_where(conn: psycopg.Connection, table: str, where: Spec, values: Spec) -> None:
    """UPDATE rows matching every column = value of where."""
    if not values:
        return
    query = sql.SQL("UPDATE {} SET {} WHERE {}").format(
        sql.Identifier(table),
        sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c in values),
        sql.SQL(" AND ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c in where))
    conn.execute(query, (*values.values(), *where.values()))


def id_by_name(conn: psycopg.Connection, table: str, kind: str, name: object) -> int:
    """The id of a named customer/product/tariff/voice application, else BadInput."""
    row = conn.execute(sql.SQL("SELECT id FROM {} WHERE name = %s").format(sql.Identifier(table)),
                       (str(name),)).fetchone()
    if row is None:
        raise BadInput(f"unknown {kind} {name!r}")
    return int(row[0])


def row_by_name(conn: psycopg.Connection, table: str, kind: str, name: object,
                lock: bool = False) -> Row:
    """The whole row of a named entity, else BadInput; lock it for update if asked."""
    query = sql.SQL("SELECT * FROM {} WHERE name = %s" + (" FOR UPDATE" if lock else "")).format(
        sql.Identifier(table))
    row = fetch_one(conn, query, (str(name),))
    if row is None:
        raise BadInput(f"unknown {kind} {name!r}")
    return row


def name_by_id(conn: psycopg.Connection, table: str, ident: int | None) -> str | None:
    if ident is None:
        return None
    row = conn.execute(sql.SQL("SELECT name FROM {} WHERE id = %s").format(sql.Identifier(table)),
                       (ident,)).fetchone()
    return row[0] if row else None


def pick(spec: Spec, validators: dict[str, Callable[[Any], Any]]) -> Spec:
    """Validated values for the keys present in spec; unknown keys are refused."""
    unknown = set(spec) - set(validators)
    if unknown:
        raise BadInput(f"unknown field {sorted(unknown)[0]!r}")
    return {key: validators[key](value) for key, value in spec.items()}


def db_error(exc: psycopg.errors.IntegrityError) -> BadInput:
    """A constraint violation as one line for the operator."""
    diag = exc.diag
    detail = (diag.message_detail or diag.message_primary or str(exc)).strip().rstrip(".")
    if isinstance(exc, psycopg.errors.ForeignKeyViolation):
        used = re.search(r'referenced from table "(\w+)"', detail)
        if used:
            return BadInput(f"still in use by {used.group(1)} (remove those first)")
    if isinstance(exc, psycopg.errors.UniqueViolation):
        key = re.search(r"Key \((.+)\)=\((.*)\) already exists", detail)
        if key:
            return BadInput(f"{key.group(1)} {key.group(2)} already exists in {diag.table_name}")
    if isinstance(exc, psycopg.errors.CheckViolation):
        return BadInput(f"value refused by the database check {diag.constraint_name}")
    return BadInput(f"refused by the database: {detail}")


# --- output ------------------------------------------------------------------------------

def plain(value: Any) -> Any:
    """JSON-friendly value: Decimal and datetime as text."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def emit(ctx: Context, data: Any) -> None:
    """Print a message, a record or a list of records (table, or JSON with --json)."""
    if data is None:
        return
    if ctx.json:
        payload = {"message": data} if isinstance(data, str) else plain(data)
        ctx.out.write(json.dumps(payload, ensure_ascii=False) + "\n")
    elif isinstance(data, str):
        ctx.out.write(data + "\n")
    elif isinstance(data, dict):
        ctx.out.write(_pairs(data))
    else:
        ctx.out.write(table(list(data)))


def _cell(value: Any) -> str:
    value = plain(value)
    if value is None:
        return "-"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _pairs(record: Row) -> str:
    width = max((len(k) for k in record), default=0)
    return "".join(f"{key.ljust(width)}  {_cell(value)}\n" for key, value in record.items())


def table(rows: list[Row]) -> str:
    """Rows as an aligned text table with a header line."""
    if not rows:
        return "(none)\n"
    cols = list(rows[0])
    cells = [[_cell(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(cols, widths)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines) + "\n"


def given(args: Any, names: Iterable[str]) -> Spec:
    """The options the operator actually passed (argparse leaves the rest None)."""
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


def add_options(parser: Any, fields: dict[str, str]) -> None:
    """--field-name VALUE for each field (help text as given); values are validated later."""
    for fld, help_text in fields.items():
        parser.add_argument("--" + fld.replace("_", "-"), dest=fld, metavar="VALUE", help=help_text)
