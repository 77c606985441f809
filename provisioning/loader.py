"""Redis projection of PostgreSQL rows (docs/DATA.md), change publishing and resync.

record functions turn rows into the msgpack maps readers expect; Changes collects the
keys one committed write affects; publish() applies them, bumps the generation and
announces each key on the invalidation channel (tollgate.keyspace names them all); resync()
rebuilds everything in pipelined batches.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgpack
import psycopg
import redis
from psycopg.rows import dict_row

from tollgate import keyspace

GEN = keyspace.GENERATION
CHANNEL = keyspace.INVALIDATE
BATCH = 5000
Row = dict[str, Any]
Progress = Callable[[int, int], None]

CUSTOMER_COLS = ("id, name, currency, timezone, language, credit_limit, blocked, max_calls, "
                 "max_daily_usage, daily_usage_email, ip_filter, authorized_sources::text[], "
                 "allowed_countries, outgoing_ddi, media_relay_set, voice_notifications, "
                 "recording, features, billing_method, sip_domain, corporation, "
                 "distribute_method, application_server, on_demand_recording, "
                 "recording_service_code, allow_recording_removal, balance, "
                 "(SELECT coalesce(json_agg("
                 "json_build_object('product_id', r.product_id, 'activation', r.activation,"
                 " 'expiry', r.expiry)"
                 " ORDER BY r.activation DESC, r.id DESC), '[]') FROM rating_profiles r"
                 " WHERE r.customer_id = customers.id) AS rating_profiles")
ACCOUNT_COLS = ("id, customer_id, product_id, password, service_password, associated_number, "
                "ivr_app_id, language, blocked, billing_model, credit_limit, answering_mode, "
                "follow_me, follow_me_order, expires, first_use, outgoing_ddi, "
                "voicemail_pin_required, balance")
RATE_COLS = ("tariff_id, prefix, price_first, price_next, interval_first, interval_next, "
             "connect_fee, free_seconds, forbidden")


def money(value: Decimal | None) -> str | None:
    """Decimal -> fixed 5-place text ('0.05000'); None stays None. Never float."""
    if value is None:
        return None
    return format(value.quantize(Decimal("0.00001")), "f")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def pack(record: Row) -> bytes:
    """A record as stored in Redis."""
    return msgpack.packb(record, use_bin_type=True)


def unpack(data: bytes) -> Any:
    """The inverse of pack (for tests and tools)."""
    return msgpack.unpackb(data, raw=False)


# --- projections: PostgreSQL row -> record -------------------------------------------

def customer_record(row: Row) -> Row:
    """keyspace.customer"""
    return {
        "id": row["id"], "name": row["name"], "currency": row["currency"],
        "timezone": row["timezone"], "language": row["language"],
        "credit_limit": money(row["credit_limit"]), "blocked": row["blocked"],
        "max_calls": row["max_calls"], "max_daily_usage": money(row["max_daily_usage"]),
        "daily_usage_email": row["daily_usage_email"], "ip_filter": row["ip_filter"],
        "authorized_sources": list(row["authorized_sources"]),
        "allowed_countries": list(row["allowed_countries"]),
        "outgoing_ddi": row["outgoing_ddi"], "media_relay_set": row["media_relay_set"],
        "voice_notifications": row["voice_notifications"], "recording": row["recording"],
        "features": list(row["features"]), "billing_method": row["billing_method"],
        "sip_domain": row["sip_domain"], "corporation": row["corporation"],
        "distribute_method": row["distribute_method"],
        "application_server": row["application_server"],
        "on_demand_recording": row["on_demand_recording"],
        "recording_service_code": row["recording_service_code"],
        "allow_recording_removal": row["allow_recording_removal"],
        # newest activation first: [{product_id, activation, expiry}] (ISO text, expiry nil)
        "rating_profiles": [{"product_id": p["product_id"], "activation": p["activation"],
                             "expiry": p["expiry"]} for p in row.get("rating_profiles") or ()],
    }


def domain_record(row: Row) -> Row:
    """keyspace.sip_domain"""
    return {"customer_id": row["id"]}


def account_record(row: Row) -> Row:
    """keyspace.account"""
    return {
        "id": row["id"], "customer_id": row["customer_id"], "product_id": row["product_id"],
        "password": row["password"], "service_password": row["service_password"],
        "associated_number": row["associated_number"], "ivr_app_id": row["ivr_app_id"],
        "language": row["language"], "blocked": row["blocked"],
        "billing_model": row["billing_model"], "credit_limit": money(row["credit_limit"]),
        "answering_mode": row["answering_mode"], "follow_me": list(row["follow_me"]),
        "follow_me_order": row.get("follow_me_order") or "sequential",
        "expires": _iso(row["expires"]), "first_use": _iso(row["first_use"]),
        "outgoing_ddi": row.get("outgoing_ddi"),
        "voicemail_pin_required": bool(row.get("voicemail_pin_required", False)),
    }


def alias_record(row: Row) -> Row:
    """keyspace.alias"""
    return {"id": row["id"], "account_id": row["account_id"], "allow_auth": row["allow_auth"]}


def product_record(row: Row, rating: list[Row]) -> Row:
    """keyspace.product; rating sorted by access code ('' = plain calls first)."""
    entries = sorted(({"access_code": r["access_code"], "tariff_id": r["tariff_id"]}
                      for r in rating), key=lambda e: e["access_code"])
    return {"id": row["id"], "name": row["name"], "currency": row["currency"], "rating": entries,
            "rounding_amount": str(row.get("rounding_amount", "0.01"))}


def tariff_record(row: Row) -> Row:
    """keyspace.tariff"""
    return {"id": row["id"], "name": row["name"], "currency": row["currency"]}


def rate_record(row: Row) -> Row:
    """One field of keyspace.rates(tariff_id)."""
    return {
        "prefix": row["prefix"], "price_first": money(row["price_first"]),
        "price_next": money(row["price_next"]), "interval_first": row["interval_first"],
        "interval_next": row["interval_next"], "connect_fee": money(row["connect_fee"]),
        "free_seconds": row["free_seconds"], "forbidden": row["forbidden"],
    }


def app_record(row: Row, access_numbers: list[str]) -> Row:
    """keyspace.app"""
    return {"id": row["id"], "name": row["name"], "type": row["type"],
            "settings": row["settings"], "access_numbers": sorted(access_numbers)}


# --- what one write changes ------------------------------------------------------------

@dataclass
class Changes:
    """Redis effects of one committed PostgreSQL transaction."""
    put: dict[str, bytes | str] = field(default_factory=dict)
    hput: dict[str, dict[str, bytes]] = field(default_factory=dict)
    hdel: dict[str, set[str]] = field(default_factory=dict)
    delete: set[str] = field(default_factory=set)

    def set(self, key: str, value: bytes | str) -> None:
        self.delete.discard(key)
        self.put[key] = value

    def remove(self, key: str) -> None:
        self.put.pop(key, None)
        self.hput.pop(key, None)
        self.hdel.pop(key, None)
        self.delete.add(key)

    def hset(self, key: str, fld: str, value: bytes) -> None:
        self.hdel.get(key, set()).discard(fld)
        self.hput.setdefault(key, {})[fld] = value

    def hremove(self, key: str, fld: str) -> None:
        self.hput.get(key, {}).pop(fld, None)
        self.hdel.setdefault(key, set()).add(fld)

    def merge(self, other: Changes) -> None:
        for key in other.delete:
            self.remove(key)
        for key, value in other.put.items():
            self.set(key, value)
        for key, fields in other.hdel.items():
            for fld in fields:
                self.hremove(key, fld)
        for key, values in other.hput.items():
            for fld, value in values.items():
                self.hset(key, fld, value)

    def keys(self) -> list[str]:
        """Every key touched, in a stable order."""
        return sorted(set(self.put) | set(self.hput) | set(self.hdel) | self.delete)

    def messages(self) -> list[str]:
        """What gets published: each key, except a hash changed field by field (a few
        prefixes of a tariff), which is announced per field so caches keep the rest."""
        out = []
        for key in self.keys():
            fields = set(self.hput.get(key, ())) | self.hdel.get(key, set())
            whole = key in self.put or key in self.delete or not fields
            if whole or len(fields) > keyspace.FIELD_MESSAGES_MAX:
                out.append(key)
            else:
                out.extend(f"{key}#{fld}" for fld in sorted(fields))
        return out


def publish(client: redis.Redis, changes: Changes) -> None:
    """Apply changes atomically (MULTI), INCR the generation, PUBLISH each key on the
    invalidation channel."""
    keys = changes.keys()
    if not keys:
        return
    pipe = client.pipeline(transaction=True)
    for key in sorted(changes.delete):
        pipe.delete(key)
    for key, value in changes.put.items():
        pipe.set(key, value)
    for key, fields in changes.hdel.items():
        if fields:
            pipe.hdel(key, *sorted(fields))
    for key, values in changes.hput.items():
        pipe.hset(key, mapping=values)  # type: ignore[arg-type]
    announce(pipe, changes.messages())
    pipe.execute()


# INCR the generation, publish each message, then "#<generation>": a cache that saw the
# last message knows it missed nothing of that generation (hotpath.RecordCache)
ANNOUNCE = """
local gen = redis.call('INCR', KEYS[1])
for i = 2, #ARGV do redis.call('PUBLISH', ARGV[1], ARGV[i]) end
redis.call('PUBLISH', ARGV[1], '#' .. gen)
return gen"""


def announce(pipe: Any, messages: list[str]) -> None:
    """Queue the generation bump and the invalidation messages on a MULTI pipeline."""
    # EVAL, not EVALSHA: redis-py checks a pipeline's scripts in a round trip of its own
    for start in range(0, max(len(messages), 1), BATCH):
        pipe.eval(ANNOUNCE, 1, GEN, CHANNEL, *messages[start:start + BATCH])


# --- reading PostgreSQL into Changes (used by the CLI, the import and resync) ----------

def _one(conn: psycopg.Connection, query: str, params: tuple[Any, ...]) -> Row | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, params).fetchone()  # type: ignore[arg-type]


def customer_changes(conn: psycopg.Connection, customer_id: int,
                     old_domain: str | None = None) -> Changes:
    """Refresh (or drop) a customer's record, balance and SIP domain (`old_domain`: the one
    it had before this change, dropped when it is gone)."""
    changes = Changes()
    row = _one(conn, f"SELECT {CUSTOMER_COLS} FROM customers WHERE id = %s", (customer_id,))
    if old_domain and (row is None or row["sip_domain"] != old_domain):
        changes.remove(keyspace.sip_domain(old_domain))
    if row is None:
        changes.remove(keyspace.customer(customer_id))
        changes.remove(keyspace.balance("customer", customer_id))
    else:
        changes.set(keyspace.customer(customer_id), pack(customer_record(row)))
        changes.set(keyspace.balance("customer", customer_id), money(row["balance"]) or "0")
        if row["sip_domain"]:
            changes.set(keyspace.sip_domain(row["sip_domain"]), pack(domain_record(row)))
    return changes


def account_changes(conn: psycopg.Connection, account_id: str) -> Changes:
    """Refresh (or drop) an account's record and balance."""
    changes = Changes()
    row = _one(conn, f"SELECT {ACCOUNT_COLS} FROM accounts WHERE id = %s", (account_id,))
    if row is None:
        changes.remove(keyspace.account(account_id))
        changes.remove(keyspace.balance("account", account_id))
    else:
        changes.set(keyspace.account(account_id), pack(account_record(row)))
        changes.set(keyspace.balance("account", account_id), money(row["balance"]) or "0")
    return changes


def alias_changes(conn: psycopg.Connection, alias_id: str) -> Changes:
    """Refresh (or drop) an alias record."""
    changes = Changes()
    row = _one(conn, "SELECT id, account_id, allow_auth FROM aliases WHERE id = %s", (alias_id,))
    if row is None:
        changes.remove(keyspace.alias(alias_id))
    else:
        changes.set(keyspace.alias(alias_id), pack(alias_record(row)))
    return changes


def product_changes(conn: psycopg.Connection, product_id: int) -> Changes:
    """Refresh (or drop) a product record with its rating entries."""
    changes = Changes()
    row = _one(conn, "SELECT id, name, currency, rounding_amount FROM products WHERE id = %s",
               (product_id,))
    if row is None:
        changes.remove(keyspace.product(product_id))
        return changes
    with conn.cursor(row_factory=dict_row) as cur:
        rating = cur.execute("SELECT access_code, tariff_id FROM rating_entries"
                             " WHERE product_id = %s", (product_id,)).fetchall()
    changes.set(keyspace.product(product_id), pack(product_record(row, rating)))
    return changes


def tariff_changes(conn: psycopg.Connection, tariff_id: int) -> Changes:
    """Refresh a tariff record; a deleted tariff also drops its rate table."""
    changes = Changes()
    row = _one(conn, "SELECT id, name, currency FROM tariffs WHERE id = %s", (tariff_id,))
    if row is None:
        changes.remove(keyspace.tariff(tariff_id))
        changes.remove(keyspace.rates(tariff_id))
    else:
        changes.set(keyspace.tariff(tariff_id), pack(tariff_record(row)))
    return changes


def rate_changes(conn: psycopg.Connection, tariff_id: int, prefix: str) -> Changes:
    """Refresh (or drop) one prefix of a tariff's rate table."""
    changes = Changes()
    row = _one(conn, f"SELECT {RATE_COLS} FROM rates WHERE tariff_id = %s AND prefix = %s",
               (tariff_id, prefix))
    if row is None:
        changes.hremove(keyspace.rates(tariff_id), prefix)
    else:
        changes.hset(keyspace.rates(tariff_id), prefix, pack(rate_record(row)))
    return changes


def app_changes(conn: psycopg.Connection, app_id: int, old_numbers: Iterable[str] = ()) -> Changes:
    """Refresh (or drop) an application and its access numbers (dropping old_numbers gone)."""
    changes = Changes()
    row = _one(conn, "SELECT id, name, type, settings FROM voice_applications WHERE id = %s",
               (app_id,))
    numbers: list[str] = []
    if row is None:
        changes.remove(keyspace.app(app_id))
    else:
        branded = conn.execute(
            "SELECT number, brand_prompts FROM access_numbers WHERE app_id = %s",
            (app_id,)).fetchall()
        numbers = [number for number, _ in branded]
        changes.set(keyspace.app(app_id), pack(app_record(row, numbers)))
        for number, brand in branded:
            entry: Row = {"app_id": app_id}
            if brand:  # prompts of this access number's brand come first
                entry["brand_prompts"] = brand
            changes.set(keyspace.access_number(number), pack(entry))
    for number in set(old_numbers) - set(numbers):
        changes.remove(keyspace.access_number(number))
    return changes


# --- bulk loading and resync -----------------------------------------------------------

def bulk_set(client: redis.Redis, items: Iterable[tuple[str, bytes | str]], batch: int = BATCH,
             progress: Callable[[int], None] | None = None) -> int:
    """SET many string keys: one MSET per batch, batches pipelined; returns the count."""
    count = 0
    pipe = client.pipeline(transaction=False)
    chunk: dict[str, bytes | str] = {}
    for key, value in items:
        chunk[key] = value
        if len(chunk) >= batch:
            count += _flush(pipe, chunk, progress)
    count += _flush(pipe, chunk, progress)
    return count


def _flush(pipe: Any, chunk: dict[str, bytes | str], progress: Callable[[int], None] | None) -> int:
    size = len(chunk)
    if size:
        pipe.mset(chunk)
        pipe.execute()
        chunk.clear()
        if progress:
            progress(size)
    return size


def _stream(conn: psycopg.Connection, query: str) -> Iterator[Row]:
    """Rows through a server-side cursor so a million aliases never sit in memory twice."""
    with conn.cursor(name="tg_resync", row_factory=dict_row) as cur:
        cur.itersize = BATCH
        cur.execute(query)  # type: ignore[arg-type]
        yield from cur


def string_items(conn: psycopg.Connection) -> Iterator[tuple[str, bytes | str]]:
    """Every string key of the projection, read from one snapshot."""
    for row in _stream(conn, f"SELECT {CUSTOMER_COLS} FROM customers"):
        yield keyspace.customer(row['id']), pack(customer_record(row))
        yield keyspace.balance("customer", row['id']), money(row["balance"]) or "0"
        if row["sip_domain"]:
            yield keyspace.sip_domain(row["sip_domain"]), pack(domain_record(row))
    for row in _stream(conn, "SELECT id, name, currency FROM tariffs"):
        yield keyspace.tariff(row['id']), pack(tariff_record(row))
    for row in _stream(conn, "SELECT id FROM products"):
        yield from product_changes(conn, row["id"]).put.items()
    for row in _stream(conn, "SELECT id FROM voice_applications"):
        yield from app_changes(conn, row["id"]).put.items()
    for row in _stream(conn, f"SELECT {ACCOUNT_COLS} FROM accounts"):
        yield keyspace.account(row['id']), pack(account_record(row))
        yield keyspace.balance("account", row['id']), money(row["balance"]) or "0"
    yield from alias_items(conn)


def alias_items(conn: psycopg.Connection) -> Iterator[tuple[str, bytes]]:
    """Every alias record, read with COPY: the bulk of a large tenant, kept fast.

    Alias and account IDs are restricted to characters COPY's text format never escapes,
    so a line splits on tabs as it is.
    """
    query = "COPY (SELECT id, account_id, allow_auth FROM aliases) TO STDOUT"
    with conn.cursor().copy(query) as copy:
        tail = b""
        for block in copy:
            lines = (tail + bytes(block)).split(b"\n")
            tail = lines.pop()
            for line in lines:
                ident, account, allow = line.decode().split("\t")
                record = {"id": ident, "account_id": account, "allow_auth": allow == "t"}
                yield keyspace.alias(ident), pack(record)


def count_keys(conn: psycopg.Connection) -> int:
    """How many keys resync will write (for the progress bar)."""
    row = conn.execute(
        "SELECT 2 * (SELECT count(*) FROM customers) + (SELECT count(sip_domain) FROM customers)"
        " + (SELECT count(*) FROM tariffs)"
        " + (SELECT count(*) FROM products) + (SELECT count(*) FROM voice_applications)"
        " + (SELECT count(*) FROM access_numbers) + 2 * (SELECT count(*) FROM accounts)"
        " + (SELECT count(*) FROM aliases) + (SELECT count(*) FROM rates)").fetchone()
    return int(row[0]) if row else 0


def load_rates(conn: psycopg.Connection, client: redis.Redis, written: set[str],
               progress: Callable[[int], None] | None = None) -> None:
    """Each tariff's hash built under a temporary key, then RENAMEd over the live one."""
    tariff_id, fields = None, {}
    for row in _stream(conn, f"SELECT {RATE_COLS} FROM rates ORDER BY tariff_id, prefix"):
        if row["tariff_id"] != tariff_id and fields:
            _swap_rates(client, tariff_id, fields, written, progress)
            fields = {}
        tariff_id = row["tariff_id"]
        fields[row["prefix"]] = pack(rate_record(row))
    if fields:
        _swap_rates(client, tariff_id, fields, written, progress)


def _swap_rates(client: redis.Redis, tariff_id: Any, fields: dict[str, bytes], written: set[str],
                progress: Callable[[int], None] | None) -> None:
    key, tmp = keyspace.rates(tariff_id), keyspace.rates_staging(tariff_id)
    pipe = client.pipeline(transaction=False)
    pipe.delete(tmp)
    items = list(fields.items())
    for start in range(0, len(items), BATCH):
        pipe.hset(tmp, mapping=dict(items[start:start + BATCH]))  # type: ignore[arg-type]
    pipe.rename(tmp, key)  # readers never see a half-built hash
    pipe.execute()
    written.add(key)
    if progress:
        progress(len(fields))


def load_daily(conn: psycopg.Connection, client: redis.Redis) -> None:
    """The clients' spend of recent days (daily_usage), so a Redis that lost it does not
    let a client's day start over (a day with no row stays zero, as it is)."""
    pipe = client.pipeline(transaction=False)
    for customer_id, day, spent in conn.execute(
            "SELECT customer_id, day, spent FROM daily_usage"
            " WHERE day >= current_date - 2").fetchall():
        pipe.set(keyspace.daily_spent(customer_id, day.isoformat()), money(spent) or "0",
                 ex=keyspace.DAILY_SPENT_TTL_S)
    pipe.execute()


STALE_PATTERNS = keyspace.PROJECTION_PATTERNS


def drop_stale(client: redis.Redis, written: set[str]) -> int:
    """DEL projection keys PostgreSQL no longer has; returns how many."""
    dropped = 0
    for pattern in STALE_PATTERNS:
        stale = [k for k in client.scan_iter(match=pattern, count=BATCH)
                 if k.decode() not in written]
        for start in range(0, len(stale), BATCH):
            dropped += client.delete(*stale[start:start + BATCH])
    return dropped


def resync(conn: psycopg.Connection, client: redis.Redis, progress: Progress | None = None) -> int:
    """Rebuild the whole projection from one PostgreSQL snapshot; returns keys written.

    Ends with INCR of the generation and PUBLISH '*' so every in-process cache starts over.
    """
    written: set[str] = set()
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        total, done = count_keys(conn), 0

        def step(n: int) -> None:
            nonlocal done
            done += n
            if progress:
                progress(done, total)

        def track(items: Iterable[tuple[str, bytes | str]]) -> Iterator[tuple[str, bytes | str]]:
            for key, value in items:
                written.add(key)
                yield key, value

        bulk_set(client, track(string_items(conn)), progress=step)
        load_rates(conn, client, written, progress=step)
        load_daily(conn, client)
    drop_stale(client, written)
    pipe = client.pipeline(transaction=True)
    announce(pipe, ["*"])
    pipe.execute()
    return len(written)
