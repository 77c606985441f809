"""Balance transfer (voice-application-settings.txt, "Allow to transfer the balance from
debit accounts"): a customer tops up an account with the whole balance of another prepaid
card instead of a voucher. The donor must be a debit account of the same currency and
product that has never been used for calls ("to prevent potential fraudulent attempts at
stealing someone else's balance"), and hold at least the application's minimum sum.

One transaction: both accounts locked (in a fixed order, so two transfers never deadlock),
the donor emptied and the recipient credited through the one balance rule
(provisioning/cli/balance.py add_funds), a `transfer` balance operation on each; of two
transfers of one donor at the same moment exactly one moves anything.
"""
from __future__ import annotations

from decimal import Decimal

import psycopg

from provisioning import loader
from provisioning.cli.balance import add_funds
from provisioning.cli.common import Row, fetch
from provisioning.validate import BadInput


def transfer(conn: psycopg.Connection, donor: str, recipient: str,
             minimum: Decimal = Decimal(0)) -> tuple[loader.Changes, Row]:
    """Move the donor card's whole balance to `recipient`; BadInput says why not."""
    if donor == recipient:
        raise BadInput("an account cannot top itself up")
    rows = {row["id"]: row for row in fetch(
        conn, "SELECT a.id, a.product_id, a.billing_model, a.balance, a.blocked, a.first_use,"
              " c.currency FROM accounts a JOIN customers c ON c.id = a.customer_id"
              " WHERE a.id = ANY(%s) ORDER BY a.id FOR UPDATE OF a", ([donor, recipient],))}
    if recipient not in rows:
        raise BadInput(f"unknown account {recipient}")
    if donor not in rows:
        raise BadInput(f"unknown account {donor}")
    given, taker = rows[donor], rows[recipient]
    if given["billing_model"] != "debit" or given["blocked"]:
        raise BadInput(f"account {donor} is not a prepaid (debit) card that may give")
    if (given["product_id"], given["currency"]) != (taker["product_id"], taker["currency"]):
        raise BadInput(f"account {donor} has another product or currency than {recipient}")
    if given["first_use"] is not None or conn.execute(
            "SELECT 1 FROM xdrs WHERE account_id = %s LIMIT 1", (donor,)).fetchone():
        raise BadInput(f"account {donor} has been used for calls")
    amount = Decimal(given["balance"])
    if amount <= 0:
        raise BadInput(f"account {donor} holds nothing to transfer")
    if amount < minimum:
        raise BadInput(f"account {donor} holds {loader.money(amount)}, less than the "
                       f"minimum sum {loader.money(minimum)}")
    changes, _, _ = add_funds(conn, donor, -amount, "transfer", f"to {recipient}")
    more, result, _ = add_funds(conn, recipient, amount, "transfer", f"from {donor}",
                                currency=given["currency"])
    changes.merge(more)
    return changes, {**result, "from": donor, "amount": loader.money(amount)}
