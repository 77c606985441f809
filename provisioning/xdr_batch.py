"""Billing a batch of xDR events in one transaction with a fixed number of statements.

What rating needs (each account's customer, product and money model, its client's currency,
timezone, pricing and rating profiles, the products' rating entries and the tariffs' rates)
is cached in the process: one query per batch for the accounts not cached, one per product
or tariff the first time it is needed. The writer drops what the invalidation channel
names (keyspace.INVALIDATE: an account, customer, product, tariff or rate table key, or
"*"); a TTL bounds what a lost message could leave stale. Balances never come from the
cache: the locked rows give them, and the money model and customer used for rating are
checked against the locked row before anything is written.

Per batch: COPY the rated rows into a temporary staging table; INSERT them into xdrs ON
CONFLICT DO NOTHING, whose RETURNING says which are new (a redelivered event inserts
nothing and is charged nothing); lock the accounts (and the customers of credit accounts)
in id order, checking the facts rating used; one UPDATE per balance table with every
account's or customer's summed change; one balance_operations row per charged xDR
(balance_after is the running balance in xDR id order), COPYed; first use and the
clients' days batched alike.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import psycopg

from billing import daily, policy, profiles
from billing.rating import charge, charged_seconds
from billing.tariff_book import Found, RateTable, find
from billing.xdr import XdrEvent
from tollgate import keyspace

log = logging.getLogger("tollgate.xdr_writer")

FREE_LEGS = frozenset({"onnet"})  # on-net inside one customer: classified free at setup
# an answered one of these is an account's "first use" (prepaid first-call access codes)
OUTGOING_LEGS = frozenset({"toll", "out"})
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
ZERO = Decimal(0)

FACTS_SQL = """
SELECT a.id, a.customer_id, a.product_id, a.billing_model, c.currency, c.timezone,
       c.features, c.billing_method,
       (SELECT coalesce(array_agg(r.product_id ORDER BY r.id), '{}') FROM rating_profiles r
         WHERE r.customer_id = c.id),
       (SELECT coalesce(array_agg(r.activation ORDER BY r.id), '{}') FROM rating_profiles r
         WHERE r.customer_id = c.id),
       (SELECT coalesce(array_agg(r.expiry ORDER BY r.id), '{}') FROM rating_profiles r
         WHERE r.customer_id = c.id)
  FROM accounts a JOIN customers c ON c.id = a.customer_id
 WHERE a.id = ANY(%s)"""
ENTRIES_SQL = """
SELECT product_id, access_code, tariff_id FROM rating_entries WHERE product_id = ANY(%s)"""
TARIFF_SQL = "SELECT currency FROM tariffs WHERE id = %s"
RATES_SQL = """
SELECT prefix, price_first, price_next, interval_first, interval_next, connect_fee,
       free_seconds, forbidden
  FROM rates WHERE tariff_id = %s"""
CHANGED_RATES_SQL = """
SELECT prefix, price_first, price_next, interval_first, interval_next, connect_fee,
       free_seconds, forbidden
  FROM rates WHERE tariff_id = %s AND prefix = ANY(%s)"""
# the rows a batch changes, locked in one order (accounts, then the customers of credit
# accounts, each by id) so concurrent writers' batches wait rather than deadlock
LOCK_ACCOUNTS = """
SELECT id, balance, customer_id, billing_model FROM accounts
 WHERE id = ANY(%s) ORDER BY id FOR UPDATE"""
LOCK_CUSTOMERS = "SELECT id, balance FROM customers WHERE id = ANY(%s) ORDER BY id FOR UPDATE"
CUSTOMER_BALANCES = "SELECT id, balance FROM customers WHERE id = ANY(%s)"
XDR_COLUMNS = ("session_id, call_id, leg, account_id, customer_id, cli, cld, access_code, "
               "setup_time, connect_time, disconnect_time, duration, charged_seconds, amount, "
               "currency, rate_prefix, sip_code, reason")
STAGING = """
CREATE TEMPORARY TABLE IF NOT EXISTS xdr_staging (
    seq integer, session_id text, call_id text, leg text, account_id text,
    customer_id integer, cli text, cld text, access_code text, setup_time timestamptz,
    connect_time timestamptz, disconnect_time timestamptz, duration integer,
    charged_seconds integer, amount numeric(18,5), currency text, rate_prefix text,
    sip_code integer, reason text) ON COMMIT DELETE ROWS"""
COPY_STAGING = f"COPY xdr_staging (seq, {XDR_COLUMNS}) FROM STDIN"
INSERT_NEW = f"""
INSERT INTO xdrs ({XDR_COLUMNS})
SELECT {XDR_COLUMNS} FROM xdr_staging ORDER BY seq
ON CONFLICT (call_id, leg, account_id) DO NOTHING
RETURNING id, call_id, leg, account_id"""
# signed changes: a charge lowers a debit balance and raises a credit (owed) balance
ADD_ACCOUNTS = """
UPDATE accounts a SET balance = a.balance + v.change
  FROM unnest(%s::text[], %s::numeric[]) AS v(id, change) WHERE a.id = v.id"""
ADD_CUSTOMERS = """
UPDATE customers c SET balance = c.balance + v.change
  FROM unnest(%s::integer[], %s::numeric[]) AS v(id, change) WHERE c.id = v.id"""
COPY_OPERATIONS = """
COPY balance_operations (account_id, customer_id, kind, amount, currency, balance_after,
                         xdr_id, comment) FROM STDIN"""
FIRST_USE = """
UPDATE accounts a SET first_use = v.at
  FROM unnest(%s::text[], %s::timestamptz[]) AS v(id, at)
 WHERE a.id = v.id AND a.first_use IS NULL"""
# a client's external outbound spend of one day of its timezone ("Max daily usage"); the
# rows come sorted so concurrent writers take them in one order
ADD_DAILY = """
INSERT INTO daily_usage AS d (customer_id, day, spent)
SELECT * FROM unnest(%s::integer[], %s::date[], %s::numeric[])
ON CONFLICT (customer_id, day) DO UPDATE SET spent = d.spent + EXCLUDED.spent
RETURNING d.customer_id, d.day, d.spent,
          (SELECT max_daily_usage FROM customers WHERE id = d.customer_id)"""
MARK_REACHED = """
UPDATE daily_usage d SET reached_at = now()
  FROM unnest(%s::integer[], %s::date[]) AS v(customer_id, day)
 WHERE d.customer_id = v.customer_id AND d.day = v.day AND d.reached_at IS NULL"""


class Unbillable(Exception):
    """An event that decodes but cannot be billed (e.g. its account does not exist)."""


class StaleFacts(Exception):
    """Cached account facts disagreed with the locked rows twice in a row."""


@dataclass(frozen=True)
class Billed:
    """The outcome of one event's transaction."""
    xdr_id: int | None          # None: the xDR was already written (redelivery)
    account_id: str
    customer_id: int
    amount: Decimal
    account_balance: Decimal
    customer_balance: Decimal
    day: str = ""               # an external outbound leg: the client's day it started
    spent_today: Decimal | None = None   # the client's spend of that day, after this leg
    reached: bool = False       # that spend reached the client's max daily usage


@dataclass(frozen=True, slots=True)
class Payer:
    """What rating needs of an account (its balance is never cached)."""
    customer_id: int
    product_id: int
    model: str


@dataclass(frozen=True, slots=True)
class Client:
    """What rating needs of a customer."""
    currency: str
    timezone: str
    priced: bool
    profiles: tuple[dict[str, Any], ...]


@dataclass(slots=True)
class Rated:
    """One event rated in memory, before the database says whether it is new."""
    event: XdrEvent
    payer: Payer
    client: Client
    amount: Decimal
    external: bool


def to_time(ts: Decimal) -> datetime | None:
    """timestamptz of decimal unix seconds (exact to the microsecond); None for 0."""
    if ts <= 0:
        return None
    return EPOCH + timedelta(microseconds=int(ts * 1_000_000))


class BatchBiller:
    """Caches of one writer process and the batch transaction that uses them."""

    def __init__(self, facts_ttl: float = 300.0, tariff_ttl: float = 3600.0,
                 clock: Callable[[], float] = time.monotonic):
        self.facts_ttl, self.tariff_ttl, self.clock = facts_ttl, tariff_ttl, clock
        self.payers: dict[str, tuple[Payer, float]] = {}
        self.clients: dict[int, tuple[Client, float]] = {}
        self.entries: dict[int, tuple[dict[str, int], float]] = {}
        self.tables: dict[int, tuple[RateTable, float]] = {}
        self.changed_rates: dict[int, set[str]] = {}   # tariff -> prefixes to read again
        self.staged: psycopg.Connection | None = None   # the connection with the staging table
        self.loads = 0                   # queries that filled a cache (tests, metrics)

    # --- invalidation ---------------------------------------------------------------

    def invalidate(self, key: str) -> None:
        """Forget what one changed projection key stands for ("*": everything)."""
        if key == "*":
            self.invalidate_all()
            return
        # keyspace.rate_field(): a few prefixes of a tariff changed, read again
        # before the next batch is rated; "#<generation>" closes a publication
        key, _, prefix = key.partition("#")
        if prefix and key.startswith(keyspace.rates("")):
            tariff = _int(key[len(keyspace.rates("")):])
            if tariff in self.tables:
                self.changed_rates.setdefault(tariff, set()).add(prefix)
            return
        account = keyspace.account("")
        if key.startswith(account):
            self.payers.pop(key[len(account):], None)
            return
        for prefix, cache in ((keyspace.customer(""), self.clients),
                              (keyspace.product(""), self.entries),
                              (keyspace.tariff(""), self.tables),
                              (keyspace.rates(""), self.tables)):
            if key.startswith(prefix):
                ident = _int(key[len(prefix):])
                if ident is not None:
                    cache.pop(ident, None)  # type: ignore[attr-defined]
                return

    def invalidate_all(self) -> None:
        for cache in (self.payers, self.clients, self.entries, self.tables):
            cache.clear()
        self.changed_rates.clear()

    def refresh_rates(self, conn: psycopg.Connection) -> None:
        """Read again the prefixes provisioning changed one by one in cached tariffs."""
        for tariff, prefixes in list(self.changed_rates.items()):
            cached = self.tables.get(tariff)
            if cached is not None:
                self.loads += 1
                found = {row[0]: tuple(row[1:]) for row in conn.execute(
                    CHANGED_RATES_SQL, (tariff, sorted(prefixes))).fetchall()}
                for prefix in prefixes:
                    if prefix in found:
                        cached[0].put(prefix, found[prefix])  # type: ignore[arg-type]
                    else:
                        cached[0].remove(prefix)
            del self.changed_rates[tariff]   # only once read: PostgreSQL may be down

    # --- filling the caches ---------------------------------------------------------

    def facts(self, conn: psycopg.Connection,
              accounts: Sequence[str]) -> dict[str, tuple[Payer, Client]]:
        """Each known account's Payer and Client; one query for those not cached."""
        now = self.clock()
        found: dict[str, tuple[Payer, Client]] = {}
        missing = []
        for account in accounts:
            payer = self.payers.get(account)
            client = self.clients.get(payer[0].customer_id) if payer else None
            if payer and client and payer[1] > now and client[1] > now:
                found[account] = (payer[0], client[0])
            else:
                missing.append(account)
        if missing:
            self.loads += 1
            expires = now + self.facts_ttl
            for row in conn.execute(FACTS_SQL, (missing,)).fetchall():
                account, customer_id, product, model, currency, tz, features, method = row[:8]
                payer_facts = Payer(customer_id, product, model)
                client_facts = Client(
                    currency, tz, policy.priced({"features": features, "billing_method": method}),
                    tuple({"product_id": p, "activation": a, "expiry": e}
                          for p, a, e in zip(row[8], row[9], row[10])))
                self.payers[account] = (payer_facts, expires)
                self.clients[customer_id] = (client_facts, expires)
                found[account] = (payer_facts, client_facts)
        return found

    def _entries(self, conn: psycopg.Connection, product: int) -> dict[str, int]:
        cached = self.entries.get(product)
        now = self.clock()
        if cached is not None and cached[1] > now:
            return cached[0]
        self.loads += 1
        entries: dict[str, int] = {}
        for _, code, tariff in conn.execute(ENTRIES_SQL, ([product],)).fetchall():
            entries[code] = tariff
        self.entries[product] = (entries, now + self.tariff_ttl)
        return entries

    def _table(self, conn: psycopg.Connection, tariff: int) -> RateTable:
        cached = self.tables.get(tariff)
        now = self.clock()
        if cached is not None and cached[1] > now:
            return cached[0]
        self.loads += 1
        with conn.transaction():   # the tariff and its rates as of one moment
            row = conn.execute(TARIFF_SQL, (tariff,)).fetchone()
            rows = conn.execute(RATES_SQL, (tariff,)).fetchall() if row else []
        table = RateTable(row[0] if row else "", ((r[0], tuple(r[1:])) for r in rows))
        self.tables[tariff] = (table, now + self.tariff_ttl)
        return table

    # --- rating ---------------------------------------------------------------------

    def find_rate(self, conn: psycopg.Connection, product: int, access_code: str,
                  number: str) -> Found | None:
        """The longest-prefix rate of the product's tariff for this access code."""
        entries = self._entries(conn, product)
        tariff = entries.get(access_code)
        if tariff is None:
            return None
        return find(entries, {tariff: self._table(conn, tariff)}, access_code, number)

    def rate(self, conn: psycopg.Connection, event: XdrEvent, payer: Payer,
             client: Client) -> Found | None:
        """The rate that bills this leg (None: nothing to bill), as the per-event SQL would."""
        if event.leg in FREE_LEGS or not event.answered:
            return None
        number = event.cld.lstrip("+")
        product: int | None = payer.product_id
        if client.profiles:   # the client's profile active at setup decides (billing/profiles)
            when = to_time(event.setup_ts) or datetime.now(timezone.utc)
            product = profiles.product_for(
                {"rating_profiles": client.profiles}, product, when,
                lambda p: self.find_rate(conn, p, event.access_code, number) is not None)
        found = None if product is None else self.find_rate(conn, product, event.access_code,
                                                             number)
        if found is None:
            log.warning("[%s] RATE: no rate for %s leg to %r, not charged",
                        event.call_id, event.leg, event.cld)
        return found

    def _rate_all(self, conn: psycopg.Connection, events: Sequence[XdrEvent]
                  ) -> tuple[list[Rated | None], list[tuple[Any, ...]]]:
        self.refresh_rates(conn)
        facts = self.facts(conn, sorted({event.account for event in events}))
        rated: list[Rated | None] = []
        rows: list[tuple[Any, ...]] = []
        for seq, event in enumerate(events):
            known = facts.get(event.account)
            if known is None:
                rated.append(None)
                continue
            payer, client = known
            found = self.rate(conn, event, payer, client)
            duration, seconds, amount = event.duration, 0, ZERO
            if found is not None and client.priced:  # not priced: rated, never charged
                seconds, amount = charged_seconds(found.rate, duration), charge(found.rate,
                                                                               duration)
            rated.append(Rated(event, payer, client, amount,
                               event.leg in OUTGOING_LEGS and event.connect_ts > 0))
            rows.append((seq, event.session_id, event.call_id, event.leg, event.account,
                         payer.customer_id, event.cli, event.cld, event.access_code,
                         to_time(event.setup_ts), to_time(event.connect_ts),
                         to_time(event.end_ts), duration, seconds, amount,
                         found.currency if found else client.currency,
                         found.prefix if found else None, event.sip_code, event.reason))
        return rated, rows

    # --- the batch transaction ------------------------------------------------------

    def bill(self, conn: psycopg.Connection, events: Sequence[XdrEvent]
             ) -> list[Billed | None]:
        """Bill every event in one transaction (idempotent); None for an event whose account
        does not exist (nothing of it written). Any failure rolls back them all."""
        self._stage(conn)
        for _ in range(2):
            rated, rows = self._rate_all(conn, events)
            try:
                return self._write(conn, rated, rows)
            except _Changed as changed:   # provisioning moved an account under us
                for account in changed.accounts:
                    self.payers.pop(account, None)
        raise StaleFacts("account facts changed while billing the batch twice")

    def _stage(self, conn: psycopg.Connection) -> None:
        if self.staged is not conn or conn.closed:
            conn.execute(STAGING)
            self.staged = conn

    def _write(self, conn: psycopg.Connection, rated: list[Rated | None],
               rows: list[tuple[Any, ...]]) -> list[Billed | None]:
        with conn.transaction():
            with conn.cursor().copy(COPY_STAGING) as copy:
                for row in rows:
                    copy.write_row(row)
            new = self._new_ids(conn, rated)
            # locked only now, after the longest statement: concurrent writers' batches
            # share accounts, and wait for each other only while balances change
            balances, owed = self._lock(conn, rated)
            self._charge(conn, rated, new, balances, owed)
            days = self._count_days(conn, rated, new)
        return [None if one is None else Billed(
                    new.get(seq), one.event.account, one.payer.customer_id,
                    one.amount if seq in new else ZERO, balances[one.event.account],
                    owed[one.payer.customer_id], *days.get(seq, ("", None, False)))
                for seq, one in enumerate(rated)]

    def _lock(self, conn: psycopg.Connection, rated: list[Rated | None]
              ) -> tuple[dict[str, Decimal], dict[int, Decimal]]:
        """Lock the batch's accounts, then its credit accounts' customers, in id order; their
        balances now, and the other customers' (read, not locked: they do not change)."""
        payers = {one.event.account: one.payer for one in rated if one is not None}
        balances: dict[str, Decimal] = {}
        changed, credit = [], set()
        for account, balance, customer, model in conn.execute(
                LOCK_ACCOUNTS, (sorted(payers),)).fetchall():
            balances[account] = balance
            if (customer, model) != (payers[account].customer_id, payers[account].model):
                changed.append(account)
            if model != "debit":
                credit.add(customer)
        changed.extend(account for account in payers if account not in balances)
        if changed:
            raise _Changed(changed)
        owed = dict(conn.execute(LOCK_CUSTOMERS, (sorted(credit),)).fetchall())
        rest = {payer.customer_id for payer in payers.values()} - credit
        if rest:
            owed.update(conn.execute(CUSTOMER_BALANCES, (sorted(rest),)).fetchall())
        return balances, owed

    def _new_ids(self, conn: psycopg.Connection, rated: list[Rated | None]) -> dict[int, int]:
        """seq -> xdr id of the rows the INSERT wrote (the first of repeated keys)."""
        first: dict[tuple[str, str, str], int] = {}
        for seq, one in enumerate(rated):
            if one is not None:
                first.setdefault((one.event.call_id, one.event.leg, one.event.account), seq)
        return {first[(call_id, leg, account)]: xdr_id
                for xdr_id, call_id, leg, account in conn.execute(INSERT_NEW).fetchall()}

    def _charge(self, conn: psycopg.Connection, rated: list[Rated | None], new: dict[int, int],
                balances: dict[str, Decimal], owed: dict[int, Decimal]) -> None:
        """Apply the new xDRs' charges: one UPDATE per balance table, one operation per
        charged xDR (two for a credit account: its own balance and its customer's), the
        running balance after each in xDR id order; first use of prepaid accounts."""
        accounts: dict[str, Decimal] = {}
        customers: dict[int, Decimal] = {}
        operations: list[tuple[Any, ...]] = []
        first_use: dict[str, datetime | None] = {}
        for seq, xdr_id in sorted(new.items(), key=lambda item: item[1]):
            one = rated[seq]
            assert one is not None, "only known accounts are staged"
            account, customer = one.event.account, one.payer.customer_id
            if one.external:
                first_use.setdefault(account, to_time(one.event.connect_ts))
            if one.amount <= 0:
                continue
            currency = one.client.currency
            change = -one.amount if one.payer.model == "debit" else one.amount
            balances[account] += change
            accounts[account] = accounts.get(account, ZERO) + change
            operations.append((account, customer, "charge", change, currency, balances[account],
                               xdr_id, f"xdr {xdr_id}"))
            if one.payer.model == "debit":
                continue
            owed[customer] += one.amount
            customers[customer] = customers.get(customer, ZERO) + one.amount
            # account_id NULL: this row changes customers.balance (xdr_id is unique: no link)
            operations.append((None, customer, "charge", one.amount, currency, owed[customer],
                               None, f"xdr {xdr_id} of account {account}"))
        if accounts:
            conn.execute(ADD_ACCOUNTS, (list(accounts), list(accounts.values())))
        if customers:
            conn.execute(ADD_CUSTOMERS, (list(customers), list(customers.values())))
        if operations:
            with conn.cursor().copy(COPY_OPERATIONS) as copy:
                for operation in operations:
                    copy.write_row(operation)
        if first_use:
            conn.execute(FIRST_USE, (list(first_use), list(first_use.values())))

    def _count_days(self, conn: psycopg.Connection, rated: list[Rated | None],
                    new: dict[int, int]) -> dict[int, tuple[str, Decimal, bool]]:
        """Add external outbound legs' charges to their clients' days; seq -> (day, that
        day's spend after the batch, whether it reached the client's max daily usage)."""
        added: dict[tuple[int, str], Decimal] = {}
        day_of: dict[int, tuple[int, str]] = {}
        for seq, one in enumerate(rated):
            if one is None or not one.external:
                continue
            key = (one.payer.customer_id,
                   daily.day_of(one.client.timezone, float(one.event.setup_ts)))
            day_of[seq] = key
            added[key] = added.get(key, ZERO) + (one.amount if seq in new else ZERO)
        if not added:
            return {}
        keys = sorted(added)
        spent: dict[tuple[int, str], tuple[Decimal, bool]] = {}
        for customer, day, total, limit in conn.execute(ADD_DAILY, (
                [k[0] for k in keys], [k[1] for k in keys], [added[k] for k in keys])).fetchall():
            spent[(customer, day.isoformat())] = (total, limit is not None and total >= limit)
        reached = sorted(key for key, (_, hit) in spent.items() if hit)
        if reached:
            conn.execute(MARK_REACHED, ([k[0] for k in reached], [k[1] for k in reached]))
        return {seq: (key[1], *spent[key]) for seq, key in day_of.items()}


class _Changed(Exception):
    """Locked rows disagree with the cached facts (or the account is gone): rate again."""

    def __init__(self, accounts: list[str]):
        super().__init__(accounts)
        self.accounts = accounts


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None
