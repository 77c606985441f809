"""TranslationRule (both implementations): seed rules, regex rules, rule lists, bad rules."""
import importlib
import random
import re

import pytest

from hotpath._rules import EXACT, LITERAL, PREFIX, REGEX, SUFFIX, parse
from hotpath.errors import InvalidTranslationRule

pytestmark = pytest.mark.unit


@pytest.fixture(params=["cython", "python"])
def impl(request):
    if request.param == "cython":
        try:
            return importlib.import_module("hotpath._translate")
        except ImportError as e:
            pytest.skip(f"Cython extension hotpath._translate is not built: {e}")
    return importlib.import_module("hotpath._translate_py")


@pytest.mark.parametrize("rule,number,expected", [
    ("s/^0/ani44/", "021234567", "ani4421234567"),
    ("s/^0/cb44/", "021234567", "cb4421234567"),
    ("s/^0/44/", "021234567", "4421234567"),
    ("s/^0/44/", "4421234567", "4421234567"),
])
def test_seed_rules(impl, rule, number, expected):
    assert impl.TranslationRule(rule).apply(number) == expected


@pytest.mark.parametrize("rule,number,expected", [
    (r"s/^(\d{3})(\d+)$/\2-\1/", "0211234", "1234-021"),
    (r"s/^00(\d+)/+\1/", "0044123", "+44123"),
    ("s/1/x/g", "1121", "xx2x"),
    ("s/1/x/", "1121", "x121"),
    ("s/^A/b/i", "a1", "b1"),
    ("s/^a/b/", "A1", "A1"),
    (r"s/[0-9]+/<&>/", "ab12cd", "ab<12>cd"),
    (r"s/^/\&/", "1", "&1"),
    (r"s|^\+|00|", "+4420", "004420"),
    (r"s/\//-/g", "1/2/3", "1-2-3"),
    ("s/(7)?8/[\\1]/", "8", "[]"),
])
def test_regex_rules(impl, rule, number, expected):
    assert impl.TranslationRule(rule).apply(number) == expected


@pytest.mark.parametrize("rule,kind", [
    ("s/^0/44/", PREFIX), ("s/99$/00/", SUFFIX), ("s/^123$/456/", EXACT), ("s/12/34/g", LITERAL),
    (r"s/^\+/00/", PREFIX), ("s/^0.1/x/", REGEX), ("s/^a/b/i", REGEX), ("s/^0/x/i", PREFIX),
    (r"s/^0/\1/", None),
])
def test_literal_rules_take_the_fast_path(rule, kind):
    if kind is None:
        with pytest.raises(InvalidTranslationRule):
            parse(rule)
    else:
        assert parse(rule)[0].kind == kind


@pytest.mark.parametrize("rule", ["s/^0/44/", "s/99$/x/", "s/^123$/456/", "s/12/34/g", "s/12/34/",
                                  "s/^/+/", "s/$/#/", r"s/^\+/00/", "s/^0/x&y/", "s/1/2/i"])
def test_fast_path_agrees_with_re_sub(impl, rule):
    step = parse(rule)[0]
    assert step.kind != REGEX
    compiled = impl.TranslationRule(rule)
    rng = random.Random(rule)
    for _ in range(300):
        number = "".join(rng.choice("0123+9") for _ in range(rng.randint(0, 8)))
        expected = step.regex.sub(_sed_template(rule), number, step.limit)
        assert compiled.apply(number) == expected, number


def _sed_template(rule):
    repl = rule.split("/")[2] if rule.count("/") == 3 else rule.split("/")[-2]
    return repl.replace("&", r"\g<0>")


def test_rule_list_applies_in_order(impl):
    rule = impl.TranslationRule("s/^0/44/; s/^44/+44/;s/^\\+44(\\d)/+44 \\1/")
    assert rule.apply("0201") == "+44 201"
    assert rule.apply("33") == "33"


def test_semicolon_inside_a_pattern_is_not_a_separator(impl):
    assert impl.TranslationRule("s/[;]/,/g;s/^/x/").apply("1;2") == "x1,2"


def test_empty_rule_is_identity(impl):
    assert impl.TranslationRule("").apply("0123") == "0123"
    assert impl.TranslationRule().apply("") == ""
    impl.validate_rule("")


@pytest.mark.parametrize("text,why", [
    ("s/^0/44", "unterminated"),
    ("x/^0/44/", "expected s/"),
    ("s/^0/44/q", "unknown flag"),
    ("s/(/x/", "bad regular expression"),
    ("s//x/", "empty pattern"),
    ("s/^0/44/;", "empty rule"),
    ("s/^0/44/ junk", "unexpected"),
    (r"s/0/\2/", "group 2"),
    (r"s/0/\q/", "unknown escape"),
    ("s", "expected s/"),
    ("sa0a1a", "cannot delimit"),
])
def test_invalid_rules_raise_with_a_one_line_reason(impl, text, why):
    with pytest.raises(InvalidTranslationRule, match=re.escape(why)) as info:
        impl.validate_rule(text)
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError):
        impl.TranslationRule(text)


def test_rules_must_be_text(impl):
    with pytest.raises(InvalidTranslationRule):
        impl.validate_rule(None)
    with pytest.raises(TypeError):
        impl.TranslationRule("s/^0/44/").apply(123)


def test_text_and_repr(impl):
    rule = impl.TranslationRule("s/^0/44/")
    assert rule.text == "s/^0/44/" and "s/^0/44/" in repr(rule)
