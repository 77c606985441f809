"""README "Your own card service, from nothing": an operator sets up a prepaid calling card
with the CLI alone, then calls its access number from the demo tenant's softphone.

The commands are the README's own, the ```sh blocks between <!-- card-setup:begin --> and
<!-- card-setup:end -->, run literally from the checkout against this module's stack (the
demo tenant loaded, as `make run` has it); the card, its PIN and the access number are read
from them. Mark dials the access number, keys in the PIN, dials a toll number through the
gateway: the toll leg is rated under LOCAL, the session leg under IN, both on the card.
"""
from __future__ import annotations

import json
import re
import subprocess
from decimal import Decimal

import pytest

from billing.rating import Rate, charge
from tests.calls import DEMO, TOLL, dial, heard, logged, phone, talking
from tollgate.stack import ROOT

pytestmark = pytest.mark.e2e

BEGIN, END = "<!-- card-setup:begin -->", "<!-- card-setup:end -->"


def section() -> str:
    """The README's card set-up section, between its two markers."""
    text = (ROOT / "README.md").read_text()
    assert text.count(BEGIN) == text.count(END) == 1, "README: one card-setup section expected"
    return text[text.index(BEGIN) + len(BEGIN):text.index(END)]


def commands(block: str) -> list[str]:
    """The shell commands of a ```sh block: continuation lines joined, comment lines dropped."""
    joined = re.sub(r"\\\n\s*", "", block)
    return [line.strip() for line in joined.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def run(tg, command: str) -> str:
    """One README command, as an operator pastes it into a shell in the checkout."""
    proc = subprocess.run(["bash", "-c", command], cwd=ROOT, env=tg.env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, f"{command}\nexit {proc.returncode}: {proc.stderr.strip()}"
    return proc.stdout


def one(pattern: str, text: str) -> str:
    found = re.findall(pattern, text)
    assert len(found) == 1, f"README card set-up: {pattern!r} found {found}"
    return found[0]


def rate_of(records, card: str, access_code: str, prefix: str) -> Rate:
    """The rate the card's product applies under `access_code` to `prefix`, as provisioned."""
    (row,) = records.query(
        "SELECT r.price_first, r.price_next, r.interval_first, r.interval_next"
        " FROM accounts a JOIN rating_entries e ON e.product_id = a.product_id"
        " JOIN rates r ON r.tariff_id = e.tariff_id"
        " WHERE a.id = %s AND e.access_code = %s AND r.prefix = %s",
        card, access_code, prefix)
    return Rate(prefix, *row)


def test_an_operator_sets_up_a_card_and_calls_its_access_number_from_a_softphone(
        tg, sip, gateway, records, calls_end):
    text = section()
    setup, check = re.findall(r"```sh\n(.*?)```", text, re.S)
    access = one(r"--access-number (\d+)", setup)
    card = one(r"account create (\d+)", setup)
    opening = Decimal(one(r"--balance ([\d.]+)", setup))
    mark, password = DEMO["mark"]
    # the prose walks the operator through what this test does
    assert f"{mark} / {password}" in text and f"`{access}`" in text
    assert f"PIN `{card}`" in text and f"`{TOLL}#`" in text

    for command in commands(setup):
        run(tg, command)

    ph = phone(tg, sip, "demo-mark", (mark, password))
    call = dial(tg, ph, access)
    heard(tg, sip, call, "enter_card")
    call.send_dtmf(card)
    heard(tg, sip, call, "enter_destination")
    assert logged(tg, call, f"AUTH: card {card} authenticated by pin")
    assert logged(tg, call, "BALANCE: announcing your_balance_is num_5 cur_USD_majors")
    call.send_dtmf(TOLL + "#")
    heard(tg, sip, call, "you_have")
    # "one hour and forty minutes": 5.00 at 0.05/min
    assert logged(tg, call, f"DIAL: {TOLL} under access code LOCAL, 6000 s")
    leg = gateway.wait_incoming(20)
    sip.wait_for(lambda: leg.confirmed, 10, "the destination answering")
    talking(sip, call, leg)
    call.hangup_with()
    sip.wait_for(lambda: leg.disconnected, 10, "BYE reaching the destination")

    records.settled_xdrs(call.call_id, 2)
    rows = records.query("SELECT leg, account_id, cld, access_code, duration, amount"
                         " FROM xdrs WHERE session_id = %s ORDER BY id", call.call_id)
    legs = {leg: tuple(rest) for leg, *rest in rows}
    assert len(rows) == 2 and sorted(legs) == ["ivr", "toll"], rows
    account, cld, code, seconds, toll_amount = legs["toll"]
    assert (account, cld, code) == (card, TOLL, "LOCAL") and seconds >= 1
    assert toll_amount == charge(rate_of(records, card, "LOCAL", "1"), seconds) > 0
    # the time on the access number outside the call, under IN, rated by the access number
    account, cld, code, seconds, session_amount = legs["ivr"]
    assert (account, cld, code) == (card, access, "IN") and seconds >= 1
    assert session_amount == charge(rate_of(records, card, "IN", "1"), seconds) > 0
    balance = records.balance(card)
    assert balance == opening - toll_amount - session_amount

    listing, as_json, shown = (run(tg, command) for command in commands(check))
    assert call.call_id in listing
    assert all(re.search(rf"^\s+{leg}\s+{card}\s", listing, re.M) for leg in legs), listing
    assert {leg["leg"]: leg["access_code"] for leg in json.loads(as_json)} == \
        {"ivr": "IN", "toll": "LOCAL"}
    assert re.search(rf"^balance\s+{balance}$", shown, re.M), shown
