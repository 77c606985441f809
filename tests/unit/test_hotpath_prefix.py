"""PrefixTable (both implementations) against a brute-force longest-prefix reference."""
import importlib
import random

import pytest

pytestmark = pytest.mark.unit


@pytest.fixture(params=["cython", "python"])
def impl(request):
    if request.param == "cython":
        try:
            return importlib.import_module("hotpath._prefix")
        except ImportError as e:
            pytest.skip(f"Cython extension hotpath._prefix is not built: {e}")
    return importlib.import_module("hotpath._prefix_py")


def brute(pairs: dict, number: str):
    if number and not (number.isascii() and number.isdigit()):
        return None
    best = max((p for p in pairs if number.startswith(p)), key=len, default=None)
    return None if best is None else (best, pairs[best])


def digits(rng, n):
    return "".join(rng.choice("0123456789") for _ in range(n))


@pytest.mark.parametrize("seed,count,maxlen", [(1, 50, 4), (2, 3000, 8), (3, 20000, 20)])
def test_random_tables_match_brute_force(impl, seed, count, maxlen):
    rng = random.Random(seed)
    pairs = {}
    for _ in range(count):
        pairs[digits(rng, rng.randint(0, maxlen))] = rng.randint(1, 10**6)
    table = impl.PrefixTable(pairs.items())
    assert len(table) == len(pairs)
    assert table.items() == sorted(pairs.items())
    keys = list(pairs)
    reference = brute if count <= 3000 else brute_cached
    for i in range(2000):
        # half extend a known prefix, half are unrelated numbers
        number = (rng.choice(keys) if i % 2 else "") + digits(rng, rng.randint(0, 22))
        expected = reference(pairs, number)
        assert table.lookup_prefix(number) == expected, number
        assert table.lookup(number) == (expected[1] if expected else None)


def test_empty_prefix_is_the_default_route(impl):
    table = impl.PrefixTable([("", "default"), ("44", "uk")])
    assert table.lookup_prefix("4420") == ("44", "uk")
    assert table.lookup_prefix("33") == ("", "default")
    assert table.lookup_prefix("") == ("", "default")
    assert impl.PrefixTable([("44", "uk")]).lookup("33") is None


def test_overlapping_prefixes_pick_the_longest(impl):
    table = impl.PrefixTable([("4", 1), ("44", 2), ("4420", 3), ("44207", 4),
                              ("442071234567890123", 5)])
    assert table.lookup("442071234567890123999") == 5
    assert table.lookup("44207") == 4
    assert table.lookup("4420") == 3
    assert table.lookup("4421") == 2
    assert table.lookup("49") == 1
    assert table.lookup("5") is None


def test_twenty_digit_prefixes_and_longer_numbers(impl):
    p20 = "98765432109876543210"
    table = impl.PrefixTable([(p20, "max"), (p20[:19], "19")])
    assert table.lookup_prefix(p20 + "777") == (p20, "max")
    assert table.lookup_prefix(p20[:19] + "1") == (p20[:19], "19")
    with pytest.raises(ValueError):
        table.add(p20 + "1", "too long")


def test_leading_zeros_are_significant(impl):
    table = impl.PrefixTable([("0", "a"), ("00", "b"), ("000", "c")])
    assert [table.lookup(n) for n in ("0123", "0012", "0001", "1")] == ["a", "b", "c", None]


@pytest.mark.parametrize("number", ["+4420", "44-20", "4420 ", "44a", "٤٤", "4²"])
def test_numbers_with_any_non_digit_match_nothing(impl, number):
    table = impl.PrefixTable([("", "default"), ("44", "uk")])
    assert table.lookup(number) is None and table.lookup_prefix(number) is None


@pytest.mark.parametrize("prefix", ["+44", "4a", " 1", "²", 44])
def test_bad_prefixes_are_rejected(impl, prefix):
    with pytest.raises((ValueError, TypeError)):
        impl.PrefixTable().add(prefix, "x")


def test_none_values_are_rejected(impl):
    with pytest.raises(ValueError):
        impl.PrefixTable().add("1", None)


def test_repeated_prefix_keeps_the_last_value(impl):
    table = impl.PrefixTable([("44", "old"), ("44", "new")])
    assert len(table) == 1 and table.lookup("4420") == "new"


def test_adding_after_lookups_rebuilds(impl):
    table = impl.PrefixTable([("44", "uk")])
    assert table.lookup("4420") == "uk"
    table.add("4420", "london")
    table.add("1", "nanp")
    assert table.lookup("44207") == "london" and table.lookup("1212") == "nanp"
    assert len(table) == 3


def test_non_str_numbers_raise_type_error(impl):
    with pytest.raises(TypeError):
        impl.PrefixTable([("1", 1)]).lookup(b"1")


def test_large_table_smoke(impl):
    # The direct index grows with the table (5 digits at 200k); the 1M build is in bench/.
    rng = random.Random(7)
    pairs = {digits(rng, rng.randint(3, 12)): i for i in range(200_000)}
    table = impl.PrefixTable(pairs.items())
    assert len(table) == len(pairs)
    sample = rng.sample(list(pairs), 500)
    for prefix in sample:
        found = table.lookup_prefix(prefix + "99999")
        assert found is not None and len(found[0]) >= len(prefix)
        assert found == brute_cached(pairs, prefix + "99999")


def brute_cached(pairs, number):
    if number and not (number.isascii() and number.isdigit()):
        return None
    for n in range(len(number), -1, -1):
        if number[:n] in pairs:
            return number[:n], pairs[number[:n]]
    return None
