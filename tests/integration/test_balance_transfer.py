"""Balance transfer from an unused prepaid card (voice-application-settings.txt, "Allow to
transfer the balance from debit accounts") against real PostgreSQL and Redis: the whole
balance moves in one transaction, once, and only between cards the seed allows."""
from __future__ import annotations

from decimal import Decimal

import pytest

from provisioning import transfers
from tests.integration.test_vouchers import CARD, RACHEL, query
from tests.races import at_once

pytestmark = pytest.mark.integration

DONOR, OTHER = "55500000002", "55500000003"


@pytest.fixture
def tg(demo_cli):
    return demo_cli


def card(tg, number: str, balance: str) -> str:
    """Another debit card of the demo's Smart Cards product."""
    assert tg("account", "create", number, "--customer", "Smart Cards", "--product",
              "Smart Cards", "--billing-model", "debit", "--balance", balance) == 0, tg.err
    return number


def balance(dsn: str, account: str) -> Decimal:
    return query(dsn, "SELECT balance FROM accounts WHERE id = %s", account)[0][0]


def test_an_unused_card_gives_its_whole_balance_in_one_go(tg, pg_dsn, redis_client):
    card(tg, DONOR, "3.25")
    assert tg("balance", "transfer", DONOR, CARD, "--minimum", "1") == 0, tg.err
    assert (balance(pg_dsn, DONOR), balance(pg_dsn, CARD)) == (Decimal(0), Decimal("8.25"))
    assert redis_client.get(f"tg:bal:account:{CARD}") == b"8.25000"
    assert redis_client.get(f"tg:bal:account:{DONOR}") == b"0.00000"
    assert sorted(query(pg_dsn, "SELECT account_id, kind, amount, comment"
                                " FROM balance_operations WHERE kind = 'transfer'")) == [
        (CARD, "transfer", Decimal("3.25000"), f"from {DONOR}"),
        (DONOR, "transfer", Decimal("-3.25000"), f"to {CARD}")]
    # it is empty now: a second transfer has nothing to move
    assert tg("balance", "transfer", DONOR, CARD) == 2
    assert tg.err.strip() == f"tollgate: account {DONOR} holds nothing to transfer"


@pytest.mark.parametrize("donor, setup, said", [
    (DONOR, "used", f"account {DONOR} has been used for calls"),
    (DONOR, "blocked", f"account {DONOR} is not a prepaid (debit) card that may give"),
    (RACHEL, None, f"account {RACHEL} is not a prepaid (debit) card that may give"),
    (DONOR, "minimum", f"account {DONOR} holds 3.00000, less than the minimum sum 5.00000"),
    (CARD, "self", "an account cannot top itself up"),
    ("55599999999", None, "unknown account 55599999999"),
])
def test_a_transfer_the_seed_does_not_allow_is_refused_and_moves_nothing(tg, pg_dsn, donor,
                                                                        setup, said):
    if donor == DONOR:
        card(tg, DONOR, "3")
    if setup == "used":
        query(pg_dsn, "UPDATE accounts SET first_use = now() WHERE id = %s RETURNING id", DONOR)
    elif setup == "blocked":
        assert tg("account", "update", DONOR, "--blocked", "true") == 0
    argv = ["balance", "transfer", donor, CARD] + (["--minimum", "5"] if setup == "minimum"
                                                   else [])
    assert tg(*argv) == 2
    assert tg.err.strip() == f"tollgate: {said}"
    assert balance(pg_dsn, CARD) == Decimal("5.00000")
    assert query(pg_dsn, "SELECT count(*) FROM balance_operations WHERE kind = 'transfer'") \
        == [(0,)]


def test_a_card_of_another_product_cannot_give(tg, pg_dsn):
    # Rachel's product differs from the card's: a debit card of hers may not give to it
    assert tg("account", "create", OTHER, "--customer", "Smart Calls, Ltd.", "--product",
              "Smart Calls Office", "--billing-model", "debit", "--balance", "2") == 0, tg.err
    assert tg("balance", "transfer", OTHER, CARD) == 2
    assert tg.err.strip() == (f"tollgate: account {OTHER} has another product or currency "
                              f"than {CARD}")


def test_one_card_given_to_two_accounts_at_once_moves_its_balance_once(tg, pg_dsn):
    card(tg, DONOR, "4")
    card(tg, OTHER, "0")
    outcomes = at_once(pg_dsn, *[
        lambda conn, to=to: transfers.transfer(conn, DONOR, to) for to in (CARD, OTHER)])
    assert outcomes == [f"account {DONOR} holds nothing to transfer", "done"]
    assert balance(pg_dsn, DONOR) == 0
    assert balance(pg_dsn, CARD) + balance(pg_dsn, OTHER) == Decimal("9")
