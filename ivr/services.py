"""What voice applications read and write beyond the media: records (the shared cached
directory), funds (Redis balances less what live calls hold, by billing.money's rule),
translation rules, and the few provisioning writes an app makes (registering an ANI as an
alias), done the CLI's way: one PostgreSQL transaction, then Redis.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal
from functools import lru_cache

import psycopg
import redis

import hotpath
from billing import money
from billing import policy as rules
from billing.prepaid import TRANSFER_REFUSED, VOUCHER_INVALID, VOUCHER_UNAVAILABLE
from provisioning import loader, transfers, vouchers
from provisioning.cli import account as account_cli
from provisioning.cli import alias as alias_cli
from provisioning.cli.common import Row
from provisioning.validate import BadInput
from tollgate import keyspace
from tollgate.config import Settings
from tollgate.directory import Directory, Identity, Record
from tollgate.reservations import Reservations
from tollgate.slots import Slots

log = logging.getLogger("ivr.services")


@lru_cache(maxsize=256)
def _rule(text: str) -> hotpath.TranslationRule:
    return hotpath.TranslationRule(text)


class Services:
    """One per IVR process, over its Directory (and so its Redis connection)."""

    def __init__(self, directory: Directory, settings: Settings):
        self.directory, self.settings = directory, settings
        self.reservations = Reservations(directory.client)
        self.slots = Slots(directory.client)

    # records
    def identity(self, some_id: str) -> Identity | None:
        return self.directory.identity(some_id) if some_id else None

    def account(self, account_id: str) -> Record | None:
        return self.directory.account(account_id)

    def customer(self, customer_id: int) -> Record | None:
        return self.directory.customer(customer_id)

    def product(self, product_id: int) -> Record | None:
        return self.directory.product(product_id)

    def rate(self, tariff_id: int, number: str) -> Record | None:
        return self.directory.rate(tariff_id, number)

    def translate(self, rule: str, number: str) -> str:
        return _rule(rule).apply(number) if rule else number

    # wrong guesses, counted across calls
    def failures(self, key: str) -> int:
        return self.directory.failures(key)

    def record_failure(self, key: str, ttl: int) -> int:
        return self.directory.record_failure(key, ttl)

    # money
    def funds(self, account: Record) -> tuple[Decimal | None, Decimal | None]:
        """(what the account may still spend, None = unbounded; its own balance)."""
        customer = self.customer(int(account.get("customer_id") or 0)) or {}
        bounds = money.bounds(account, customer)
        ids = (account["id"], account.get("customer_id"))
        balances: list[Decimal | None] = []
        held: list[Decimal] = []
        for scope, ident in zip((money.ACCOUNT, money.CUSTOMER), ids):
            raw = self.directory.client.get(keyspace.balance(scope, ident))
            balances.append(None if raw is None else money.from_micro(
                money.to_micro(raw.decode() if isinstance(raw, bytes) else str(raw))))
            held.append(self.reservations.held(scope, ident))
        funds = money.Funds(bounds, (balances[0], balances[1]), (held[0], held[1]))
        try:
            available = money.available(funds)
        except money.UnknownBalance:
            available = Decimal(0)  # nobody vouches for the balance: nothing to spend
        return available, balances[0]

    def first_call(self, account: Record) -> bool:
        """Never called out before: no first use recorded, no answered call marked."""
        if account.get("first_use"):
            return False
        return not self.directory.client.exists(keyspace.called(account["id"]))

    def mark_called(self, account: Record) -> None:
        self.directory.client.set(keyspace.called(account["id"]), 1)

    # the client's external call slots (max calls), as Kamailio takes them
    def take_slot(self, customer: Record, call_id: str) -> bool:
        """One of the client's external call slots for `call_id` (a call in from the PSTN),
        unless it has max calls already; a client without a limit always gets one."""
        most = rules.max_calls(customer)
        if not most:
            return True
        return self.slots.take(customer["id"], call_id, most, self.settings.max_call_duration)

    def give_back_slot(self, customer_id: object, call_id: str) -> None:
        self.slots.give_back(customer_id, call_id)

    # provisioning writes
    def register_ani(self, alias: str, account_id: str) -> bool:
        """Add the translated ANI as an alias of the card (auto registration)."""
        return self._write(lambda conn: alias_cli.create(conn, alias, {"account": account_id}))

    def deregister_ani(self, alias: str, account_id: str) -> bool:
        """Remove the ANI alias from the card (self-care), only if it is the card's."""
        def remove(conn: psycopg.Connection) -> loader.Changes:
            row = alias_cli.alias_row(conn, alias, lock=True)
            if row["account_id"] != account_id:
                raise BadInput(f"alias {alias} is not an alias of {account_id}")
            return alias_cli.remove(conn, alias)
        return self._write(remove)

    def redeem_voucher(self, code: str, account_id: str) -> Decimal | str:
        """Credit the account with a voucher (provisioning/vouchers.py): the amount added,
        VOUCHER_INVALID (unknown, used, expired or another currency: one answer for all, so
        a guesser learns nothing) or VOUCHER_UNAVAILABLE (PostgreSQL unreachable)."""
        return self._credit(lambda conn: vouchers.redeem(conn, code, account_id),
                            VOUCHER_INVALID, f"VOUCHER: for {account_id}")

    def transfer_balance(self, card: str, account_id: str, minimum: Decimal) -> Decimal | str:
        """Move the whole balance of the card numbered `card` (its account ID or an alias)
        to the account (provisioning/transfers.py): the amount moved, TRANSFER_REFUSED or
        VOUCHER_UNAVAILABLE (PostgreSQL unreachable)."""
        identity = self.directory.identity(card) if card else None
        if identity is None:
            return TRANSFER_REFUSED
        donor = str(identity.account["id"])
        return self._credit(lambda conn: transfers.transfer(conn, donor, account_id, minimum),
                            TRANSFER_REFUSED, f"TRANSFER: to {account_id}")

    def _credit(self, fn: Callable[[psycopg.Connection], tuple[loader.Changes, Row]],
                refused: str, step: str) -> Decimal | str:
        """One provisioning transaction that credits an account (a voucher, a transfer):
        the amount credited, `refused` (BadInput: why is logged, never told), or
        VOUCHER_UNAVAILABLE (PostgreSQL unreachable); Redis follows the commit."""
        try:
            with psycopg.connect(self.settings.pg_dsn, autocommit=True,
                                 connect_timeout=3) as conn, conn.transaction():
                changes, result = fn(conn)
        except BadInput as exc:
            log.info("[-] %s refused: %s", step, exc)
            return refused
        except (psycopg.Error, OSError) as exc:
            log.warning("[-] %s: %s", step, exc)
            return VOUCHER_UNAVAILABLE
        try:
            loader.publish(self.directory.client, changes)
        except redis.RedisError as exc:  # committed: `tollgate resync` brings Redis level
            log.warning("[-] %s: committed in PostgreSQL, Redis not updated: %s", step, exc)
        self.directory.poll()
        return Decimal(str(result["amount"]))

    def _write(self, fn: Callable[[psycopg.Connection], loader.Changes]) -> bool:
        try:
            with psycopg.connect(self.settings.pg_dsn, autocommit=True,
                                 connect_timeout=3) as conn, conn.transaction():
                changes = fn(conn)
            loader.publish(self.directory.client, changes)
        except (BadInput, psycopg.Error, OSError) as exc:
            log.warning("[-] PROVISION: %s", exc)
            return False
        self.directory.poll()
        return True

    def account_from_template(self, template_id: str, account_id: str) -> bool:
        """A new account `account_id` (an auto-registered caller) with the template
        account's customer, product and language: a prepaid (debit) account holding
        nothing, whatever the template's billing model, so that a stranger who reaches
        the access number gets no credit, only a card to top up. False when the template
        is missing or the ID is taken."""
        def create(conn: psycopg.Connection) -> loader.Changes:
            template = account_cli.show(conn, template_id)
            spec = {name: template[name] for name in ("customer", "product", "language")
                    if template.get(name) is not None}
            return account_cli.create(conn, account_id, {**spec, "billing_model": "debit"})
        return self._write(create)

    def set_service_password(self, account_id: str, password: str) -> bool:
        """The account's service password (the mailbox and card PIN), changed by its owner."""
        return self._write(lambda conn: account_cli.change(conn, account_id,
                                                           {"service_password": password}))
