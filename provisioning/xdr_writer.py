"""xDR writer: consumes the xDR stream (keyspace.XDR_STREAM) in group `writers`, rates each
leg and bills it once.

Per batch of entries read together (up to --batch), one PostgreSQL transaction inserts
every xDR (COPY into a staging table, then INSERT ... ON CONFLICT DO NOTHING on call_id,
leg, account_id) and applies the charges of the rows that are new, summed per account and
customer (provisioning/xdr_batch.py: rating from in-memory tariffs, no query per event).
After the commit one Redis MULTI refreshes the balances, releases the calls' reservations
and XACKs the whole batch, so a crash anywhere means redelivery, and redelivery hits the
unique key and changes nothing. Undecodable events go to
the dead-letter stream at once; when the batch transaction fails on a bad event (unknown account,
data error), the batch is rolled back and billed again one transaction per event, so the
bad one is dead-lettered and the others are billed (acked, never crash the loop).
PostgreSQL or Redis being down leaves events pending and retries with backoff.
"""
from __future__ import annotations

import argparse
import logging
import signal
import socket
import threading
import time
from dataclasses import replace
from datetime import datetime, timezone
from decimal import Decimal

import msgpack
import psycopg
import redis
from prometheus_client import start_http_server

from billing import daily, policy, profiles
from billing.rating import Rate, RateError, charge, charged_seconds, quantize
from billing.xdr import XdrError, XdrEvent, decode
from provisioning import daily_usage
from provisioning.recordings import Recorder
from provisioning.xdr_batch import (
    EPOCH,
    FREE_LEGS,
    OUTGOING_LEGS,
    BatchBiller,
    Billed,
    StaleFacts,
    Unbillable,
    to_time,
)
from tollgate import config, keyspace
from tollgate import metrics_writer as m
from tollgate.mail import Mailer, MailError
from tollgate.reservations import held_keys

log = logging.getLogger("tollgate.xdr_writer")

STREAM = keyspace.XDR_STREAM
GROUP = "writers"
DEAD_STREAM = keyspace.XDR_DEAD
DEAD_MAXLEN = 100_000
BATCH = 2000
# a writer's first read, and its read after a short one: the size doubles on each full read
# up to --batch, so a writer that keeps up bills small batches soon and one catching up
# bills big ones (the per-batch statements are spread over more xDRs)
FIRST_READ = 100
# a short read of new entries waits until its oldest is this old, then takes what came
# meanwhile: at live rates a batch then holds ~rate x linger xDRs instead of one or two,
# and the fixed statements of a batch are paid that much less often (bench/README `## xdr`)
LINGER_MS = 100
FIRST_USE = "UPDATE accounts SET first_use = %s WHERE id = %s AND first_use IS NULL"
__all__ = ["EPOCH", "FREE_LEGS", "OUTGOING_LEGS", "Billed", "Unbillable", "XdrWriter", "main"]
TRANSIENT_PG = (psycopg.OperationalError, psycopg.InterfaceError, psycopg.errors.ProgrammingError,
                psycopg.errors.InternalError)
TRANSIENT_REDIS = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError)

ACCOUNT_SQL = """
SELECT a.customer_id, a.product_id, a.billing_model, c.currency, c.timezone, c.features,
       c.billing_method
  FROM accounts a JOIN customers c ON c.id = a.customer_id
 WHERE a.id = %s"""
PROFILES_SQL = """
SELECT product_id, activation, expiry FROM rating_profiles WHERE customer_id = %s"""
# a client's external outbound spend of one day of its timezone ("Max daily usage")
ADD_DAILY = """
INSERT INTO daily_usage AS d (customer_id, day, spent) VALUES (%s, %s, %s)
ON CONFLICT (customer_id, day) DO UPDATE SET spent = d.spent + EXCLUDED.spent
RETURNING d.spent, (SELECT max_daily_usage FROM customers WHERE id = d.customer_id)"""
# SET a day's spend unless Redis already holds a larger one (writers commit concurrently;
# the later MULTI may carry the smaller spend)
GROW = """
local now = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if tonumber(ARGV[1]) >= now then redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) end
return 1"""
# new entries of the group, up to ARGV[3], as one msgpack blob: redis-py parses a reply in
# Python, ~10 us per entry, where msgpack's C unpacker takes well under one
READ_NEW = """
local reply = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', ARGV[3],
                         'STREAMS', KEYS[1], '>')
if not reply then return false end
return cmsgpack.pack(reply[1][2])"""
# HDEL each reservation hash's calls of the batch (KEYS: the hashes; ARGV: how many calls
# each, then the calls): one command instead of one per hash, in slices Lua's stack takes
RELEASE = """
local at = #KEYS
for i = 1, #KEYS do
  local last = at + tonumber(ARGV[i])
  for first = at + 1, last, 1000 do
    redis.call('HDEL', KEYS[i], unpack(ARGV, first, math.min(first + 999, last)))
  end
  at = last
end
return 1"""
MARK_REACHED = """
UPDATE daily_usage SET reached_at = now()
 WHERE customer_id = %s AND day = %s AND reached_at IS NULL"""
RATE_SQL = """
SELECT r.prefix, r.price_first, r.price_next, r.interval_first, r.interval_next,
       r.connect_fee, r.free_seconds, r.forbidden, t.currency
  FROM rating_entries e
  JOIN rates r ON r.tariff_id = e.tariff_id
  JOIN tariffs t ON t.id = e.tariff_id
 WHERE e.product_id = %s AND e.access_code = %s AND starts_with(%s, r.prefix)
 ORDER BY length(r.prefix) DESC LIMIT 1"""
INSERT_XDR = """
INSERT INTO xdrs (session_id, call_id, leg, account_id, customer_id, cli, cld, access_code,
                  setup_time, connect_time, disconnect_time, duration, charged_seconds,
                  amount, currency, rate_prefix, sip_code, reason)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (call_id, leg, account_id) DO NOTHING
RETURNING id"""
# signed change: a charge lowers a debit balance and raises a credit (owed) balance
UPDATE_ACCOUNT = "UPDATE accounts SET balance = balance + %s WHERE id = %s RETURNING balance"
UPDATE_CUSTOMER = "UPDATE customers SET balance = balance + %s WHERE id = %s RETURNING balance"
INSERT_OPERATION = """
INSERT INTO balance_operations (account_id, customer_id, kind, amount, currency,
                                balance_after, xdr_id, comment)
VALUES (%s, %s, 'charge', %s, %s, %s, %s, %s)"""
# rows a batch may change, locked up front in one order (accounts, then the customers of
# credit accounts, each by id) so concurrent writers' batches wait rather than deadlock
LOCK_ACCOUNTS = "SELECT id FROM accounts WHERE id = ANY(%s) ORDER BY id FOR UPDATE"
LOCK_CUSTOMERS = """
SELECT id FROM customers WHERE id IN (SELECT customer_id FROM accounts
                                        WHERE id = ANY(%s)
                                          AND billing_model IS DISTINCT FROM 'debit')
 ORDER BY id FOR UPDATE"""
BALANCES_SQL = """
SELECT a.balance, c.balance FROM accounts a JOIN customers c ON c.id = a.customer_id
 WHERE a.id = %s"""


def find_rate(conn: psycopg.Connection, product_id: int, access_code: str,
              number: str) -> tuple[Rate, str] | None:
    """The longest-prefix rate of the product's tariff for this access code, and currency."""
    row = conn.execute(RATE_SQL, (product_id, access_code, number)).fetchone()
    if row is None:
        return None
    fields = ("prefix", "price_first", "price_next", "interval_first", "interval_next",
              "connect_fee", "free_seconds", "forbidden")
    return Rate(**dict(zip(fields, row[:8]))), row[8]


def billing_product(conn: psycopg.Connection, customer_id: int, product_id: int | None,
                    event: XdrEvent) -> int | None:
    """The product that bills the leg: its client's rating profiles active when the call
    was set up decide, as they did in Kamailio (billing/profiles.py); none: the account's."""
    rows = conn.execute(PROFILES_SQL, (customer_id,)).fetchall()
    if not rows:
        return product_id
    number = event.cld.lstrip("+")
    when = to_time(event.setup_ts) or datetime.now(timezone.utc)
    return profiles.product_for(
        {"rating_profiles": [dict(zip(("product_id", "activation", "expiry"), r)) for r in rows]},
        product_id, when,
        lambda product: find_rate(conn, product, event.access_code, number) is not None)


def rate_leg(conn: psycopg.Connection, event: XdrEvent, customer_id: int,
             product_id: int | None) -> tuple[Rate | None, str | None]:
    """The rate that bills this leg (None: nothing to bill) and its tariff's currency."""
    if event.leg in FREE_LEGS or not event.answered:
        return None, None
    product_id = billing_product(conn, customer_id, product_id, event)
    found = None if product_id is None else find_rate(
        conn, product_id, event.access_code, event.cld.lstrip("+"))
    if found is None:
        log.warning("[%s] RATE: no rate for %s leg to %r, not charged",
                    event.call_id, event.leg, event.cld)
        return None, None
    return found


def bill(conn: psycopg.Connection, event: XdrEvent) -> Billed:
    """Insert the xDR and apply its charge in one transaction (idempotent): events one by
    one after their batch failed (the per-event SQL xdr_batch is tested against)."""
    with conn.transaction():
        return count_daily(conn, [bill_in(conn, event)])[0]


def bill_batch(conn: psycopg.Connection, events: list[XdrEvent]) -> list[Billed]:
    """Bill every event in one transaction with per-event SQL (idempotent); any failure
    rolls back them all. The reference the writer's BatchBiller is tested against."""
    with conn.transaction():
        accounts = sorted({event.account for event in events})
        conn.execute(LOCK_ACCOUNTS, (accounts,))
        conn.execute(LOCK_CUSTOMERS, (accounts,))
        return count_daily(conn, [bill_in(conn, event) for event in events])


def count_daily(conn: psycopg.Connection, billed: list[Billed]) -> list[Billed]:
    """Add the charges of external outbound legs to their clients' days (one row per client
    and day, in one order so concurrent writers wait rather than deadlock); each Billed
    gets its day's spend, and whether it reached the client's max daily usage."""
    added: dict[tuple[int, str], Decimal] = {}
    for one in billed:
        if one.day:
            key = (one.customer_id, one.day)
            added[key] = added.get(key, Decimal(0)) + one.amount
    days: dict[tuple[int, str], tuple[Decimal, bool]] = {}
    for (customer_id, day), amount in sorted(added.items()):
        spent, limit = conn.execute(ADD_DAILY, (customer_id, day, amount)).fetchone()
        reached = limit is not None and spent >= limit
        if reached:
            conn.execute(MARK_REACHED, (customer_id, day))
        days[(customer_id, day)] = (spent, reached)
    return [replace(one, spent_today=days[(one.customer_id, one.day)][0],
                    reached=days[(one.customer_id, one.day)][1]) if one.day else one
            for one in billed]


def bill_in(conn: psycopg.Connection, event: XdrEvent) -> Billed:
    """Insert the xDR and apply its charge inside the caller's transaction."""
    payer = conn.execute(ACCOUNT_SQL, (event.account,)).fetchone()
    if payer is None:
        raise Unbillable(f"unknown account {event.account!r}")
    customer_id, product_id, model, customer_currency, tz, features, method = payer
    rate, currency = rate_leg(conn, event, customer_id, product_id)
    # a client whose calls are not priced (billing method none): rated, never charged
    priced = policy.priced({"features": features, "billing_method": method})
    seconds = charged_seconds(rate, event.duration) if rate and priced else 0
    amount = charge(rate, event.duration) if rate and priced else Decimal(0)
    row = conn.execute(INSERT_XDR, (
        event.session_id, event.call_id, event.leg, event.account, customer_id, event.cli,
        event.cld, event.access_code, to_time(event.setup_ts), to_time(event.connect_ts),
        to_time(event.end_ts), event.duration, seconds, amount,
        currency or customer_currency, rate.prefix if rate else None, event.sip_code,
        event.reason)).fetchone()
    xdr_id = row[0] if row else None
    if xdr_id is not None and event.answered and event.leg in OUTGOING_LEGS:
        conn.execute(FIRST_USE, (to_time(event.connect_ts), event.account))
    if xdr_id is not None and amount > 0:
        apply_charge(conn, event.account, customer_id, model, amount, customer_currency,
                     xdr_id)
    balances = conn.execute(BALANCES_SQL, (event.account,)).fetchone()
    external = event.leg in OUTGOING_LEGS and event.answered
    return Billed(xdr_id, event.account, customer_id, amount if xdr_id else Decimal(0),
                  balances[0], balances[1],
                  day=daily.day_of(tz, float(event.setup_ts)) if external else "")


def apply_charge(conn: psycopg.Connection, account_id: str, customer_id: int, model: str,
                 amount: Decimal, currency: str, xdr_id: int) -> None:
    """Debit per the money model; a credit account's charge also raises its customer's."""
    change = -amount if model == "debit" else amount
    (balance,) = conn.execute(UPDATE_ACCOUNT, (change, account_id)).fetchone()
    conn.execute(INSERT_OPERATION, (account_id, customer_id, change, currency, balance,
                                    xdr_id, f"xdr {xdr_id}"))
    if model == "debit":
        return
    (owed,) = conn.execute(UPDATE_CUSTOMER, (amount, customer_id)).fetchone()
    # account_id NULL: this row changes customers.balance (xdr_id is unique, so no link)
    conn.execute(INSERT_OPERATION, (None, customer_id, amount, currency, owed, None,
                                    f"xdr {xdr_id} of account {account_id}"))


class Backoff:
    """Exponential delays for retrying a backend that is down."""

    def __init__(self, first: float = 0.1, limit: float = 5.0):
        self.first, self.limit, self.delay = first, limit, first

    def reset(self) -> None:
        self.delay = self.first

    def wait(self, stop: threading.Event) -> None:
        stop.wait(self.delay)
        self.delay = min(self.limit, self.delay * 2)


class XdrWriter:
    """One consumer of the `writers` group."""

    def __init__(self, dsn: str, client: redis.Redis, consumer: str, batch: int = BATCH,
                 claim_idle_s: float = 30.0, block_ms: int = 1000, linger_ms: int = 0,
                 mailer: Mailer | None = None, recorder: Recorder | None = None,
                 biller: BatchBiller | None = None):
        self.dsn, self.client, self.consumer = dsn, client, consumer
        self.mailer, self.recorder = mailer, recorder
        self.batch, self.claim_idle_ms, self.block_ms = batch, int(claim_idle_s * 1000), block_ms
        self.linger_ms = linger_ms
        self.stop = threading.Event()        # run()'s: a lingering read ends when it is set
        self.biller = biller or BatchBiller()
        self.size = min(FIRST_READ, batch)   # entries asked for by the next read
        self.changes: redis.client.PubSub | None = None
        self.heard_gen = self.gen_ahead = 0   # the generation announced last; Redis ahead
        self.gen_checked = 0.0
        self.conn: psycopg.Connection | None = None
        self.group_ready = False
        self.last_claim = 0.0
        self.last_gauges = 0.0

    def pg(self) -> psycopg.Connection:
        if self.conn is None or self.conn.closed:
            self.conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=5)
        return self.conn

    def drop_pg(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.conn = None

    def ensure_group(self) -> None:
        """Create the group (and the stream) unless it exists; Redis may have restarted."""
        if self.group_ready:
            return
        try:
            self.client.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self.group_ready = True

    def read(self) -> list[tuple[bytes, dict | None]]:
        """Our own pending entries first, then stale ones of dead consumers, then new ones."""
        mine = self._xread("0", block=None)
        if mine:
            return mine
        now = time.monotonic()
        if now - self.last_claim >= self.claim_idle_ms / 2000:
            self.last_claim = now
            claimed = self.client.xautoclaim(STREAM, GROUP, self.consumer, self.claim_idle_ms,
                                             start_id="0-0", count=self.size)
            if claimed[1]:
                return claimed[1]
        new = self._read_new(self.size) or self._xread(">", block=self.block_ms)
        return self._linger(new)

    def _read_new(self, count: int) -> list[tuple[bytes, dict | None]]:
        """Up to `count` new entries without blocking (one round trip, msgpack-packed)."""
        packed = self.client.eval(READ_NEW, 1, STREAM, GROUP, self.consumer, count)
        if not packed:
            return []
        return [(entry_id, dict(zip(fields[::2], fields[1::2])))
                for entry_id, fields in msgpack.unpackb(packed, raw=True)]

    def _linger(self, entries: list[tuple[bytes, dict | None]]
                ) -> list[tuple[bytes, dict | None]]:
        """A short read waits until its oldest entry (stamped by Redis at XADD) is
        linger_ms old, then adds what came meanwhile; a full read, or entries already that
        old (catching up), go at once."""
        if not entries or len(entries) >= self.size or self.linger_ms <= 0:
            return entries
        added_ms = _entry_ms(entries[0][0])
        wait = (added_ms + self.linger_ms) / 1000 - time.time() if added_ms else 0.0
        if wait <= 0:
            return entries
        self.stop.wait(min(wait, self.linger_ms / 1000))
        return entries + self._read_new(self.size - len(entries))

    def _xread(self, start: str, block: int | None) -> list:
        reply = self.client.xreadgroup(GROUP, self.consumer, {STREAM: start},
                                       count=self.size, block=block)
        return reply[0][1] if reply else []

    def follow_changes(self) -> None:
        """Forget the cached facts and tariffs that provisioning changed (the invalidation
        channel names their keys); everything when the subscription is (re)made, since
        what was published meanwhile is lost."""
        try:
            if self.changes is None:
                changes = self.client.pubsub(  # type: ignore[no-untyped-call]
                    ignore_subscribe_messages=True)
                changes.subscribe(keyspace.INVALIDATE)
                self.changes = changes
                self.biller.invalidate_all()
                self.heard_gen, self.gen_ahead = self._generation(), 0
            while True:
                message = self.changes.get_message(timeout=0.0)
                if message is None:
                    break
                if message.get("type") == "message":
                    text = _text(message["data"])
                    if text.startswith("#") and text[1:].isdigit():  # a write announced in full
                        self.heard_gen = max(self.heard_gen, int(text[1:]))
                    else:
                        self.biller.invalidate(text)
            self._check_generation()
        except TRANSIENT_REDIS:
            self.drop_changes()
            raise

    def _generation(self) -> int:
        raw = self.client.get(keyspace.GENERATION)
        return int(raw) if raw is not None else 0

    def _check_generation(self, every: float = 1.0) -> None:
        """redis-py may make the subscription again by itself (a Redis restart or a
        Sentinel failover), losing what was published meanwhile: a generation counter that
        stays ahead of the announcements heard for a whole check interval, or goes back,
        drops every cached fact and tariff (as hotpath.RecordCache does)."""
        now = time.monotonic()
        if now - self.gen_checked < every:
            return
        self.gen_checked = now
        gen = self._generation()
        if gen < self.heard_gen or (self.gen_ahead and self.heard_gen < self.gen_ahead):
            log.warning("XDR: invalidations were lost (generation %d, heard %d): cached "
                        "rating facts dropped", gen, self.heard_gen)
            self.biller.invalidate_all()
            self.heard_gen, self.gen_ahead = gen, 0
        else:
            self.gen_ahead = gen if gen > self.heard_gen else 0

    def drop_changes(self) -> None:
        if self.changes is not None:
            try:
                self.changes.close()
            except Exception:  # noqa: BLE001 - closing a dead socket may fail any way
                pass
        self.changes = None

    def step(self) -> int:
        """Read one batch and handle every entry; returns how many were read."""
        self.ensure_group()
        self.follow_changes()
        entries = self.read()
        self.size = (min(self.batch, self.size * 2) if len(entries) >= self.size
                     else min(FIRST_READ, self.batch))
        self.handle_batch(entries)
        self.update_gauges()
        self.notify_daily()
        if self.recorder is not None:  # recorded calls that ended, filed as WAV
            self.recorder.file(self.pg(), self.client)
        return len(entries)

    def notify_daily(self, most: int = 10) -> None:
        """E-mail the clients whose max daily usage was reached (marked in Redis by this
        writer or by Kamailio), each once a day; a mark that fails goes back for later."""
        if self.mailer is None:
            return
        for mark in self.client.spop(keyspace.DAILY_REACHED, most) or ():
            found = daily_usage.parse_mark(mark)
            if found is None:
                continue
            try:
                sent = daily_usage.notify(self.pg(), self.mailer, *found)
            except MailError as exc:
                self.client.sadd(keyspace.DAILY_REACHED, mark)
                m.DAILY_EMAILS.labels("failed").inc()
                log.warning("MAIL: daily usage e-mail of customer %s not sent (%s); retrying",
                            found[0], exc)
                return
            except TRANSIENT_PG:
                self.client.sadd(keyspace.DAILY_REACHED, mark)
                raise
            if sent:
                m.DAILY_EMAILS.labels("sent").inc()
                log.info("MAIL: customer %s reached its max daily usage of %s", *found)

    def handle_batch(self, entries: list[tuple[bytes, dict | None]]) -> None:
        """Bill the entries in one transaction, then one MULTI; on a bad event, bill them
        one transaction each so only the bad one is dead-lettered. Transient failures
        propagate (nothing acked)."""
        decoded: list[tuple[bytes, bytes, XdrEvent]] = []
        for entry_id, fields in entries:
            raw = (fields or {}).get(b"m", b"")
            try:
                decoded.append((entry_id, raw, decode(raw)))
            except XdrError as exc:
                self.dead(entry_id, raw, f"{exc.__class__.__name__}: {exc}")
        if not decoded:
            return
        started = time.monotonic()
        try:
            billed = self.biller.bill(self.pg(), [event for _, _, event in decoded])
        except TRANSIENT_PG:
            raise
        except (Unbillable, StaleFacts, RateError, ArithmeticError, psycopg.Error) as exc:
            log.info("XDR: batch of %d rolled back (%s: %s), billing one by one",
                     len(decoded), exc.__class__.__name__, exc)
            for entry_id, raw, event in decoded:
                self.handle(entry_id, raw, event)
            return
        m.BATCH_SECONDS.observe(time.monotonic() - started)
        m.BATCH_SIZE.observe(len(decoded))
        done = [(entry_id, event, one) for (entry_id, _, event), one in zip(decoded, billed)
                if one is not None]
        if done:
            self.after_commit(done)
        for (entry_id, raw, event), one in zip(decoded, billed):
            if one is None:  # nothing of it was written: its account does not exist
                self.dead(entry_id, raw, f"Unbillable: unknown account {event.account!r}")

    def handle(self, entry_id: bytes, raw: bytes, event: XdrEvent) -> None:
        """Bill one event in its own transaction, or dead-letter it."""
        try:
            billed = bill(self.pg(), event)
        except (Unbillable, RateError, ArithmeticError, psycopg.DataError,
                psycopg.IntegrityError) as exc:
            self.dead(entry_id, raw, f"{exc.__class__.__name__}: {exc}")
            return
        except TRANSIENT_PG:
            raise
        except psycopg.Error as exc:
            self.dead(entry_id, raw, f"{exc.__class__.__name__}: {exc}")
            return
        self.after_commit([(entry_id, event, billed)])

    def after_commit(self, done: list[tuple[bytes, XdrEvent, Billed]]) -> None:
        """Refresh cached balances, release the reservations and ack, all in one MULTI."""
        balances: dict[str, Decimal] = {}  # the last balance read in the transaction wins
        held: dict[str, list[str]] = {}     # reservation hash -> the batch's calls in it
        days: dict[str, Decimal] = {}  # each client's day once: its spend after the batch
        reached: set[str] = set()
        for _, event, billed in done:
            balances[keyspace.balance("account", billed.account_id)] = billed.account_balance
            balances[keyspace.balance("customer", billed.customer_id)] = billed.customer_balance
            for key in held_keys(billed.account_id, billed.customer_id):
                held.setdefault(key, []).append(event.call_id)
            if billed.spent_today is not None:
                key = keyspace.daily_spent(billed.customer_id, billed.day)
                days[key] = max(days.get(key, billed.spent_today), billed.spent_today)
            if billed.reached:
                reached.add(f"{billed.customer_id}:{billed.day}")
        pipe = self.client.pipeline(transaction=True)
        pipe.mset({key: _fixed(balance) for key, balance in balances.items()})
        pipe.eval(RELEASE, len(held), *held, *(len(calls) for calls in held.values()),
                  *(call for calls in held.values() for call in calls))
        for key, spent in days.items():  # a day's spend only grows: never lower it
            # EVAL, not EVALSHA: redis-py checks a pipeline's scripts in a round trip of its own
            pipe.eval(GROW, 1, key, _fixed(spent), keyspace.DAILY_SPENT_TTL_S)
        if reached:
            pipe.sadd(keyspace.DAILY_REACHED, *reached)
        pipe.xack(STREAM, GROUP, *(entry_id for entry_id, _, _ in done))
        pipe.execute()
        written, charged = 0, Decimal(0)
        for _, event, billed in done:
            if billed.xdr_id is None:
                m.DUPLICATES.inc()
                log.info("[%s] XDR: %s leg of %s already written", event.call_id, event.leg,
                         event.account)
                continue
            written += 1
            charged += billed.amount
        m.PROCESSED.inc(written)
        m.CHARGED.inc(float(charged))  # metrics only; money stays Decimal elsewhere

    def dead(self, entry_id: bytes, raw: bytes, error: str) -> None:
        """Move an entry to the dead-letter stream and ack it, atomically."""
        log.warning("XDR: entry %s dead-lettered: %s", entry_id.decode(), error)
        pipe = self.client.pipeline(transaction=True)
        pipe.xadd(DEAD_STREAM, {"m": raw or b"", "error": error[:1000], "id": entry_id,
                                "consumer": self.consumer},
                  maxlen=DEAD_MAXLEN, approximate=True)
        pipe.xack(STREAM, GROUP, entry_id)
        pipe.execute()
        m.DEAD.inc()

    def update_gauges(self, every: float = 1.0) -> None:
        """Group lag and pending count, at most once per `every` seconds."""
        now = time.monotonic()
        if now - self.last_gauges < every:
            return
        self.last_gauges = now
        for group in self.client.xinfo_groups(STREAM):
            if _text(group.get("name")) == GROUP:
                m.LAG.set(group.get("lag") or 0)
                m.PENDING.set(group.get("pending") or 0)

    def pending(self) -> int:
        """Entries delivered to any consumer of the group and not acked yet (a dead
        consumer's are claimed once idle: until then the stream is not done)."""
        return int(self.client.xpending(STREAM, GROUP)["pending"])

    def run(self, stop: threading.Event, until_idle: bool = False) -> None:
        """Loop until `stop` is set (or, with until_idle, until nothing is left to read)."""
        self.stop = stop
        backoff = Backoff()
        while not stop.is_set():
            try:
                count = self.step()
                backoff.reset()
                if until_idle and count == 0 and not self.pending():
                    return
            except TRANSIENT_PG as exc:
                self._retry("postgresql", exc, backoff, stop)
                self.drop_pg()
            except TRANSIENT_REDIS as exc:
                self._retry("redis", exc, backoff, stop)
                self.drop_changes()  # invalidations published meanwhile are lost
            except redis.ResponseError as exc:
                if "NOGROUP" in str(exc):
                    self.group_ready = False  # Redis lost the group (restart without AOF)
                else:
                    self._retry("redis", exc, backoff, stop)
            except Exception as exc:  # noqa: BLE001 - a bug must not crash the loop: the
                # entry stays pending (nothing lost) and the log says why
                log.exception("XDR: unexpected failure")
                self._retry("internal", exc, backoff, stop)

    def _retry(self, backend: str, exc: Exception, backoff: Backoff,
               stop: threading.Event) -> None:
        log.warning("XDR: %s unavailable (%s), retrying in %.1fs", backend,
                    str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
                    backoff.delay)
        m.RETRIES.labels(backend).inc()
        backoff.wait(stop)


def _fixed(amount: Decimal) -> str:
    """Plain 5-place decimal text, as the loader writes it (never exponent notation)."""
    return format(quantize(amount), "f")


def _entry_ms(entry_id: bytes | str) -> int:
    """The Redis time (ms) in a stream entry ID `<ms>-<seq>`; 0 if it is not one."""
    head = _text(entry_id).partition("-")[0]
    return int(head) if head.isdigit() else 0


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def redis_client(settings: config.Settings, block_ms: int) -> redis.Redis:
    """A client whose socket timeout outlasts a blocking XREADGROUP."""
    from tollgate import redis_conn
    return redis_conn.client(settings, timeout=block_ms / 1000 + 5, connect_timeout=2,
                             health_check_interval=30)


def parse_args(argv: list[str] | None, settings: config.Settings) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tollgate-xdr-writer", description=__doc__.split("\n")[0])
    parser.add_argument("--consumer", default=socket.gethostname(),
                        help="consumer name; keep it stable so a restart resumes its own "
                             "pending entries (default: host name)")
    parser.add_argument("--batch", type=int, default=BATCH,
                        help="entries per read, billed in one transaction (default: %(default)s)")
    parser.add_argument("--facts-ttl", type=float, default=300.0,
                        help="seconds an account's or client's cached rating facts live unless "
                             "invalidated sooner (default: %(default)s)")
    parser.add_argument("--tariff-ttl", type=float, default=3600.0,
                        help="seconds a cached tariff or product lives unless invalidated "
                             "sooner (default: %(default)s)")
    parser.add_argument("--claim-idle", type=float, default=30.0,
                        help="seconds after which another consumer's pending entry is taken over")
    parser.add_argument("--block-ms", type=int, default=1000, help="XREADGROUP block time")
    parser.add_argument("--linger-ms", type=int, default=LINGER_MS,
                        help="a batch smaller than a full read waits until its oldest xDR is "
                             "this old, so live traffic is billed in fewer, larger batches; "
                             "0 bills each read at once (default: %(default)s)")
    parser.add_argument("--metrics-port", type=int, default=None,
                        help="serve /metrics on this port (default: only the multiprocess "
                             "files under $PROMETHEUS_MULTIPROC_DIR)")
    parser.add_argument("--until-idle", action="store_true",
                        help="exit once the stream has nothing left to write (nothing new, "
                             "nothing pending in the group)")
    parser.add_argument("--dsn", default=settings.pg_dsn, help="PostgreSQL DSN")
    return parser.parse_args(argv)


def stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = config.load()
    args = parse_args(argv, settings)
    if args.metrics_port:
        start_http_server(args.metrics_port, addr="127.0.0.1")
    writer = XdrWriter(args.dsn, redis_client(settings, args.block_ms), args.consumer,
                       batch=args.batch, claim_idle_s=args.claim_idle, block_ms=args.block_ms,
                       linger_ms=args.linger_ms, mailer=Mailer(settings),
                       recorder=Recorder(settings),
                       biller=BatchBiller(facts_ttl=args.facts_ttl, tariff_ttl=args.tariff_ttl))
    log.info("XDR: writer %s consuming %s as group %s", args.consumer, STREAM, GROUP)
    writer.run(stop_on_signals(), until_idle=args.until_idle)


if __name__ == "__main__":
    main()
