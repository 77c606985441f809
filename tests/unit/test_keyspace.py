"""One keyspace: Redis key names are spelled only in tollgate/keyspace.py.

This test pins the layout (operators and other tools read these keys) and fails when a
"tg:" literal appears in any product module, the Cython hot path included. Tests may
spell keys out: they check the layout from the outside.
"""
import re
from pathlib import Path

import pytest

from tollgate import keyspace

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("billing", "bench", "hotpath", "ivr", "kemi", "provisioning", "tollgate")
LITERAL = re.compile(r"""(?:^|[^\w])[rbfu]{0,2}(?:"|'|\"\"\"|''')tg:""")


def _sources():
    for folder in PRODUCT:
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix in (".py", ".pyx", ".pxd", ".lua") and path.name != "keyspace.py":
                yield path


@pytest.mark.parametrize("path", list(_sources()), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_key_name_is_spelled_outside_the_keyspace(path):
    hits = [f"{n}: {line.strip()}" for n, line in enumerate(path.read_text().splitlines(), 1)
            if LITERAL.search(line)]
    assert hits == [], "use tollgate.keyspace"


def test_the_key_layout():
    assert keyspace.account("17785551209") == "tg:account:17785551209"
    assert keyspace.alias("1778555#4545") == "tg:alias:1778555#4545"
    assert keyspace.customer(1) == "tg:customer:1"
    assert keyspace.product(2) == "tg:product:2"
    assert keyspace.tariff(3) == "tg:tariff:3"
    assert keyspace.rates(3) == "tg:rates:3"
    assert keyspace.app(1) == "tg:app:1"
    assert keyspace.access_number("16045550100") == "tg:accessnum:16045550100"
    assert keyspace.balance("account", "1") == "tg:bal:account:1"
    assert keyspace.reservations("customer", 1) == "tg:resv:customer:1"
    assert keyspace.pin_failures("17785551210") == "tg:pinfail:17785551210"
    assert keyspace.signature_used("ab12") == "tg:sigused:ab12"
    assert (keyspace.GENERATION, keyspace.INVALIDATE) == ("tg:gen", "tg:invalidate")
    assert (keyspace.XDR_STREAM, keyspace.XDR_DEAD) == ("tg:xdr", "tg:xdr:dead")


def test_resync_scans_every_projection_key():
    patterns = set(keyspace.PROJECTION_PATTERNS)
    assert {"tg:account:*", "tg:alias:*", "tg:rates:*", "tg:bal:customer:*"} <= patterns
    assert not any(p.startswith(("tg:resv:", "tg:xdr", "tg:pinfail:")) for p in patterns)


def test_the_guard_sees_a_literal():
    assert LITERAL.search('key = "tg:account:1"') and LITERAL.search("f'tg:x:{y}'")
    assert not LITERAL.search("keyspace.account(1)")
