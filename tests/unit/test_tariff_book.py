"""billing.prefix_rates (both hotpath backends) against brute-force references: the longest
prefix over a table and its changes, as routing asks it (digits only) and as the xDR
writer's SQL asks it (starts_with, any text); billing.tariff_book's RateTable on top."""
from __future__ import annotations

import functools
import importlib
import random
from decimal import Decimal as D

import pytest

import hotpath
from billing import tariff_book
from billing.prefix_rates import MAX_DIGITS, PrefixRates
from billing.tariff_book import RateTable

pytestmark = pytest.mark.unit


@pytest.fixture(params=["cython", "python"], autouse=True)
def backend(request, monkeypatch):
    """Build every table on one hotpath implementation."""
    name = "hotpath._prefix" if request.param == "cython" else "hotpath._prefix_py"
    try:
        module = importlib.import_module(name)
    except ImportError as e:
        pytest.skip(f"{name} is not built: {e}")
    monkeypatch.setattr(hotpath, "PrefixTable", module.PrefixTable)
    return request.param


def starts_with(pairs: dict[str, object], number: str):
    """SQL's pick: the longest prefix `number` starts with, whatever the text."""
    best = max((p for p in pairs if number.startswith(p)), key=len, default=None)
    return None if best is None else (best, pairs[best])


def routing(pairs: dict[str, object], number: str):
    """hotpath's pick: the same for all-digit numbers, None for any other."""
    if number and not (number.isascii() and number.isdigit()):
        return None
    return starts_with(pairs, number)


def digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def numbers(rng: random.Random, pairs: dict[str, object]) -> list[str]:
    """Numbers under known prefixes, random ones, and ones with a non-digit in them."""
    out = ["", "0", "+44", "abc", "1 800", "٣٣", "4" * 40, "12a34", "*98", "44\n"]
    for prefix in rng.sample(sorted(pairs), min(200, len(pairs))):
        out += [prefix, prefix + digits(rng, rng.randint(1, 12)), prefix[:-1],
                prefix + "#" + digits(rng, 3), prefix + "x"]
    out += [digits(rng, rng.randint(0, 34)) for _ in range(300)]
    return out


def check(table: PrefixRates, pairs: dict[str, object], rng: random.Random) -> None:
    assert len(table) == len(pairs)
    for number in numbers(rng, pairs):
        assert table.lookup_prefix(number) == routing(pairs, number), number
        assert table.find(number) == starts_with(pairs, number), number


@pytest.mark.parametrize("seed,count,maxlen,changes", [
    (1, 40, 4, 60), (2, 3000, 8, 500), (3, 5000, 32, 2000), (4, 0, 6, 300)])
def test_changes_over_a_table_match_brute_force(seed, count, maxlen, changes):
    rng = random.Random(seed)
    pairs: dict[str, object] = {}
    for _ in range(count):
        pairs[digits(rng, rng.randint(0, maxlen))] = rng.randint(1, 50)
    table: PrefixRates[int, object] = PrefixRates(pairs.items(), lambda k: ("price", k))
    pairs = {p: ("price", k) for p, k in pairs.items()}
    check(table, pairs, rng)
    known = sorted(pairs)
    for n in range(changes):
        if known and rng.random() < 0.4:
            prefix = rng.choice(known)
            table.remove(prefix)
            pairs.pop(prefix, None)
        else:   # a new one, a shorter or longer one of a known prefix, or a changed price
            base = rng.choice(known) if known else ""
            prefix = rng.choice([digits(rng, rng.randint(0, maxlen)), base[:-1],
                                 base + digits(rng, 1), base])
            price = rng.randint(1, 50)
            table.put(prefix, price)
            pairs[prefix] = ("price", price)
            known.append(prefix)
        if n % max(1, changes // 5) == 0:
            check(table, pairs, rng)
    check(table, pairs, rng)
    table.compact()
    check(table, pairs, rng)


def test_removing_the_match_lets_a_shorter_prefix_and_then_the_default_match():
    table = PrefixRates([("", 1), ("4", 2), ("44", 3), ("4420", 4)], str)
    table.remove("4420")
    assert table.lookup_prefix("442071") == ("44", "3")
    table.remove("44")
    table.remove("4")
    assert table.lookup_prefix("442071") == ("", "1")
    table.remove("")
    assert table.lookup_prefix("442071") is None and table.find("x") is None
    table.put("44", 5)
    assert table.lookup_prefix("442071") == ("44", "5") and len(table) == 1
    table.remove("1234")   # not there: nothing
    assert len(table) == 1


def test_a_number_with_a_non_digit_is_rated_by_its_leading_digits_only_by_the_writer():
    table = PrefixRates([("", 1), ("12", 2)], str)
    for number, writer in (("*98", ("", "1")), ("12a34", ("12", "2")), ("+1234", ("", "1")),
                           ("١٢٣", ("", "1")), ("12", ("12", "2")), ("", ("", "1"))):
        assert table.find(number) == writer, number
        assert table.lookup_prefix(number) == (writer if number.isascii() and (
            number.isdigit() or not number) else None), number
    table.put("1", 3)           # the same through the overlay
    assert table.find("1x") == ("1", "3") and table.lookup_prefix("1x") is None
    assert table.find("x1") == ("", "1") and table.lookup_prefix("x1") is None


def test_prefixes_longer_than_the_hotpath_table_holds_still_match():
    long = "4" * (MAX_DIGITS + 5)
    table = PrefixRates([("44", 1), (long, 2)], str)
    assert len(table) == 2
    assert table.lookup_prefix(long + "9") == (long, "2")
    assert table.lookup_prefix(long[:-1]) == ("44", "1")
    table.compact()
    assert table.lookup_prefix(long) == (long, "2") and not table.full
    table.remove(long)
    assert table.lookup_prefix(long) == ("44", "1") and len(table) == 1


@pytest.mark.parametrize("prefix", ["12a", "+44", "٣", " 1"])
def test_a_prefix_with_a_non_digit_is_refused(prefix):
    table = PrefixRates([], str)
    with pytest.raises(ValueError):
        table.put(prefix, 1)
    with pytest.raises(ValueError):
        PrefixRates([(prefix, 1)], str)


def test_each_distinct_price_is_made_once_in_the_table_and_in_the_changes():
    made: list[int] = []

    def make(key: int) -> list[int]:
        made.append(key)
        return [key]

    table = PrefixRates([(str(n), n % 3) for n in range(100, 400)], make)
    table.put("9", 1)
    table.put("99", 7)
    table.put("999", 7)
    assert sorted(made) == [0, 1, 2, 7]
    assert table.lookup_prefix("9")[1] is table.lookup_prefix("100")[1] 
    assert table.lookup_prefix("999")[1] is table.lookup_prefix("99")[1]


def test_without_changes_a_lookup_is_the_tables_own_call():
    table = PrefixRates([("1", 1)], str)
    assert not isinstance(table.lookup_prefix, functools.partial)
    table.put("2", 2)
    assert isinstance(table.lookup_prefix, functools.partial)
    table.compact()
    assert not isinstance(table.lookup_prefix, functools.partial)
    assert table.lookup_prefix("25") == ("2", "2")


def test_full_counts_the_changes_a_compact_folds():
    table = PrefixRates([("1", 1)], str, changes_max=2)
    table.put("2", 2)
    table.remove("1")
    assert not table.full
    table.put("3", 3)
    assert table.full
    table.compact()
    assert not table.full and len(table) == 2
    assert [table.lookup_prefix(n) for n in ("1", "2", "3")] == [None, ("2", "2"), ("3", "3")]


PRICE = (D("0.06"), D("0.06"), 60, 60, D("0.10"), 0, False)
OTHER = (D("0.30"), D("0.30"), 1, 1, D("0"), 0, False)


def test_the_writers_rate_table_folds_its_changes_past_its_bound():
    table = RateTable("USD", [("1", PRICE), ("44", OTHER), ("", PRICE)], changes_max=3)
    assert table.find("1212")[1] is table.find("*98")[1] 
    for n in range(10):
        table.put(f"1{n}", OTHER)
        assert not table.full
    table.remove("44")
    assert len(table) == 12 and not table.full
    assert table.find("15551")[0] == "15" and table.find("4420")[0] == ""
    assert table.find("1x")[1].price_first == D("0.06") 


def test_find_gives_the_tariffs_currency_and_the_matched_prefix():
    tables = {7: RateTable("EUR", [("44", OTHER), ("", PRICE)])}
    found = tariff_book.find({"": 7}, tables, "", "4420")
    assert found is not None and (found.prefix, found.currency) == ("44", "EUR")
    assert found.rate.prefix == "" and found.rate.price_first == D("0.30")
    assert tariff_book.find({"": 7}, tables, "IN", "4420") is None
    assert tariff_book.find({"": 7}, tables, "", "+44") == tariff_book.Found(
        "", tables[7].find("")[1], "EUR")
