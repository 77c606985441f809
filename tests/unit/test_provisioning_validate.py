"""Provisioning input checks, no servers: IDs, PIN aliases, money, intervals, rules."""
from __future__ import annotations

from decimal import Decimal

import pytest

from provisioning import validate as v
from provisioning.validate import BadInput

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("good", ["17785551209", "alice.smith", "card_0001", "+44-20"])
def test_account_ids_accepted(good):
    assert v.account_id(good) == good


def test_account_id_from_yaml_int():
    assert v.account_id(17785551209) == "17785551209"


@pytest.mark.parametrize("bad,problem", [
    ("", "empty"), ("a" * 65, "longer than 64"), ("1778555#4545", "'#'"), ("a b", "' '"),
    ("x@pstn", "'@'"), (True, "text expected"), (None, "text expected"),
])
def test_account_ids_refused(bad, problem):
    with pytest.raises(BadInput, match=problem):
        v.account_id(bad)


@pytest.mark.parametrize("good", ["1778555#4545", "42073723123@pstn", "ani4421234567",
                                  "1778555#4545@pstn"])
def test_alias_ids_accepted(good):
    assert v.alias_id(good) == good


@pytest.mark.parametrize("bad,problem", [
    ("1778555#", "followed by digits"), ("1778555#45a5", "followed by digits"),
    ("#4545", "nothing before"), ("x@", "'@' must be followed"),
    ("x@pst n", "'@' must be followed"),
    ("bad alias", "' '"), ("", "empty"), ("9" * 65, "longer than 64"),
])
def test_alias_ids_refused(bad, problem):
    with pytest.raises(BadInput, match=problem):
        v.alias_id(bad)


def test_pin_parts():
    assert v.pin_parts("1778555#4545") == ("1778555", "4545")
    assert v.pin_parts("42073723123@pstn") is None


def test_pin_alias_must_match_associated_number_and_length():
    v.check_pin_alias("1778555#4545", "1778555", 4, 4)
    v.check_pin_alias("ani4421234567", None, 4, 4)  # not a PIN alias: nothing to check
    with pytest.raises(BadInput, match="differs from the account's associated number 1778555"):
        v.check_pin_alias("1206555#4545", "1778555", 4, 4)
    with pytest.raises(BadInput, match="no associated number"):
        v.check_pin_alias("1778555#4545", None, 4, 4)
    with pytest.raises(BadInput, match="PIN 45 has 2 digits, the voice application wants 4 to 6"):
        v.check_pin_alias("1778555#45", "1778555", 4, 6)


def test_money_is_decimal_and_never_negative_unless_allowed():
    assert v.money("price", "0.02") == Decimal("0.02")
    assert v.money("price", 0.1) == Decimal("0.1")  # YAML float, read through its text
    assert v.money("amount", "-5", negative=True) == Decimal(-5)
    for bad, problem in (("-0.01", "negative"), ("abc", "not a decimal"), ("0.000001", "5 decimal"),
                         ("NaN", "out of range"), (True, "decimal amount")):
        with pytest.raises(BadInput, match=problem):
            v.money("price", bad)
    assert v.optional_money("limit", "") is None


def test_intervals():
    assert v.intervals("60/60") == (60, 60)
    assert v.intervals("1/1") == (1, 1)
    assert v.intervals("30") == (30, 30)
    for bad in ("0/60", "60/0", "-1/1", "a/b"):
        with pytest.raises(BadInput):
            v.intervals(bad)


def test_prefix_access_code_access_number():
    assert v.prefix("") == ""
    assert v.access_code("LEG_A.12125551234") == "LEG_A.12125551234"
    assert v.access_code("FIRST#16045550100") == "FIRST#16045550100"
    assert v.access_code("ANNOUNCE+DNIS") == "ANNOUNCE+DNIS"
    assert v.access_number("AD%") == "AD%"
    with pytest.raises(BadInput):
        v.prefix("1-800")
    with pytest.raises(BadInput):
        v.access_code("with space")


@pytest.mark.parametrize("rule", ["s/^0/ani44/", "s/^0/cb44/", "s/^0/44/", "s/^(\\d+)$/x\\1/g", ""])
def test_translation_rules_accepted(rule):
    assert v.translation_rule(rule) == rule


@pytest.mark.parametrize("rule", ["s/^0(/ani44/", "^0/ani44", "s/^0/ani44", "y/a/b/", "s/^0/\\2/"])
def test_translation_rules_refused(rule):
    with pytest.raises(BadInput, match="translation rule"):
        v.translation_rule(rule)


@pytest.mark.parametrize("rule", ["s/^0(/ani44/", "s/^0/ani44", "s/a/b/x", "s/^0/\\1/", "x/a/b/"])
def test_fallback_rule_parser_is_strict(rule):
    with pytest.raises(BadInput):
        v._fallback_rule(rule)


def test_fallback_rule_parser_accepts_the_seed_rules():
    for rule in ("s/^0/ani44/", "s/^0/cb44/", "s/^0/44/", "s/a\\/b/c/g"):
        assert v._fallback_rule(rule) == rule


def test_lists_and_words():
    assert v.cidr_list("10.0.0.1, 192.168.1.0/24") == ["10.0.0.1/32", "192.168.1.0/24"]
    assert v.countries(["us", "CA"]) == ["US", "CA"]
    assert v.boolean("x", "off") is False and v.boolean("x", True) is True
    with pytest.raises(BadInput):
        v.cidr_list("10.0.0.300")
    with pytest.raises(BadInput):
        v.boolean("x", "maybe")
    with pytest.raises(BadInput):
        v.choice("billing model", "prepaid", ("debit", "credit"))


@pytest.mark.parametrize("good", ["UTC", "America/Vancouver", "Europe/Madrid"])
def test_timezones_accepted(good):
    assert v.timezone(good) == good


@pytest.mark.parametrize("bad", ["Mars/Olympus", "../../etc/passwd", "", "Europe/Madrid\n"])
def test_timezones_refused_in_one_line(bad):
    with pytest.raises(BadInput) as err:
        v.timezone(bad)
    assert "\n" not in str(err.value)
