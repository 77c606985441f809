"""Numbers, durations and money as sequences of prompt names, in each shipped language.

Each function returns the names (`ivr.vocabulary.WORDS`) of the prompts to play one after
the other; nothing here reads a file. An unknown language is spoken in English, as
`prompts.resolve` plays English files for it.

Agreement: a count takes the gender of its noun where the language inflects it (es "un
minuto", "una hora", "veintiún dólares", "doscientas libras"; fr "une minute", "vingt et
une secondes"; de "eine Minute", "ein Dollar"). In German only one itself inflects:
101 minutes are "einhundert eins Minuten". Nouns are singular for one (and for zero in
French: "zéro seconde"), plural otherwise. Durations put "and" before their last part:
"one hour two minutes and five seconds".
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from types import MappingProxyType

from ivr import vocabulary

LANGUAGES = vocabulary.LANGUAGES
DEFAULT_LANGUAGE = "en"
MAX_NUMBER = 999_999_999
ROUNDINGS = ("none", "up")
_CENT = Decimal("0.01")
_DIGITS = frozenset("0123456789")


@dataclass(frozen=True)
class _Grammar:
    inflects: bool           # one (and es hundreds) agree with the noun counted
    trailing_one: bool       # so does a count ending in one: "veintiún", "vingt et une"
    feminine_hundreds: bool  # es "doscientas"
    bare_thousand: bool      # 1000 is "mil", "mille", "tausend", not "one thousand"
    zero_singular: bool      # fr "zéro seconde"


_GRAMMAR = {
    "en": _Grammar(False, False, False, False, False),
    "es": _Grammar(True, True, True, True, False),
    "fr": _Grammar(True, True, False, True, True),
    "de": _Grammar(True, False, False, True, False),
}


def words(lang: str) -> Mapping[str, str]:
    """Prompt name -> text of a language (English for an unknown one), read-only."""
    return MappingProxyType(vocabulary.WORDS[_language(lang)])


def spoken(names: Iterable[str], lang: str) -> str:
    """The text a sequence of prompts says, for logs and tests."""
    texts = vocabulary.WORDS[_language(lang)]
    return " ".join(texts[name] for name in names)


def number(n: int, lang: str) -> list[str]:
    """`n` said alone (|n| <= 999,999,999; negative with "minus" first)."""
    return _count(n, _language(lang), None)


def duration(seconds: int, lang: str, rounding: str = "none") -> list[str]:
    """A length of time: "none" says the seconds ("five minutes and forty-nine seconds"),
    "up" rounds up to the minute (5:49 is "six minutes"; 0 is "zero minutes")."""
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        raise TypeError(f"seconds must be an int, not {type(seconds).__name__}")
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative: {seconds}")
    if rounding not in ROUNDINGS:
        raise ValueError(f"rounding must be one of {ROUNDINGS}, not {rounding!r}")
    lang = _language(lang)
    if rounding == "up":
        seconds = -(-seconds // 60) * 60
    hours, rest = divmod(seconds, 3600)
    minutes, rest = divmod(rest, 60)
    parts = [(count, one, many) for count, one, many in (
        (hours, "hour", "hours"), (minutes, "minute", "minutes"), (rest, "second", "seconds"),
    ) if count]
    if not parts:
        parts = [(0, "minute", "minutes") if rounding == "up" else (0, "second", "seconds")]
    names: list[str] = []
    for i, (count, one, many) in enumerate(parts):
        if i and i == len(parts) - 1:
            names.append("and")
        names += _quantity(count, one, many, lang)
    return names


def amount(value: Decimal, currency: str, lang: str) -> list[str]:
    """A sum of money rounded half-up to hundredths: "twelve dollars and fifty cents";
    a currency other than USD, EUR, GBP, CAD is said in units and hundredths."""
    if not isinstance(value, Decimal):
        raise TypeError(f"an amount must be a Decimal, not {type(value).__name__}")
    if not value.is_finite() or abs(value) > MAX_NUMBER + 1:
        raise ValueError(f"cannot say the amount {value}")
    lang = _language(lang)
    cents = int(value.quantize(_CENT, rounding=ROUND_HALF_UP).scaleb(2))
    major, minor = divmod(abs(cents), 100)
    one, many, hundredth, hundredths = _currency(currency)
    if major >= 1_000_000 and major % 1_000_000 == 0:
        many += "_of"  # es "un millón de dólares", fr "un million d'euros"
    names = ["minus"] if cents < 0 else []
    if major or not minor:
        names += _quantity(major, one, many, lang)
    if major and minor:
        names.append("and")
    if minor:
        names += _quantity(minor, hundredth, hundredths, lang)
    return names


def digits(text: str, lang: str) -> list[str]:
    """The digits of `text` one by one (to read back a number); anything else is skipped."""
    _language(lang)
    return [f"num_{char}" for char in text if char in _DIGITS]


def _language(lang: str) -> str:
    return lang if lang in vocabulary.WORDS else DEFAULT_LANGUAGE


def _currency(code: str) -> tuple[str, str, str, str]:
    """The prompts of a currency's major and minor unit, singular and plural."""
    code = code.upper()
    if code in vocabulary.CURRENCIES:
        return (f"cur_{code}_major", f"cur_{code}_majors",
                f"cur_{code}_minor", f"cur_{code}_minors")
    return "cur_unit", "cur_units", "cur_hundredth", "cur_hundredths"


def _quantity(count: int, one: str, many: str, lang: str) -> list[str]:
    """`count` of the noun `one` (singular name) / `many` (plural name)."""
    singular = count == 1 or (count == 0 and _GRAMMAR[lang].zero_singular)
    return [*_count(count, lang, vocabulary.GENDERS[lang][one]), one if singular else many]


def _count(n: int, lang: str, gender: str | None) -> list[str]:
    """`n` counting a noun of `gender` ("m", "f"), or said alone (None)."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"a number must be an int, not {type(n).__name__}")
    if n < 0:
        return ["minus", *_count(-n, lang, gender)]
    if n > MAX_NUMBER:
        raise ValueError(f"{n} is beyond {MAX_NUMBER}")
    if n == 0:
        return ["num_0"]
    grammar = _GRAMMAR[lang]
    if not grammar.inflects:
        gender = None
    millions, rest = divmod(n, 1_000_000)
    thousands, units = divmod(rest, 1000)
    hundreds_gender = gender if grammar.feminine_hundreds else None
    ones_gender = gender if grammar.trailing_one or n == 1 else None
    return (_millions(millions, lang) + _thousands(thousands, lang, hundreds_gender)
            + _below_1000(units, hundreds_gender, ones_gender))


def _millions(m: int, lang: str) -> list[str]:
    if not m:
        return []
    grammar = _GRAMMAR[lang]
    gender = vocabulary.GENDERS[lang]["million"] if grammar.inflects else None
    if m == 1:  # "un millón", "eine Million"
        return [f"num_1_{gender}" if gender else "num_1", "million"]
    hundreds_gender = gender if grammar.feminine_hundreds else None
    ones_gender = gender if grammar.trailing_one else None
    return [*_below_1000(m, hundreds_gender, ones_gender), "millions"]


def _thousands(t: int, lang: str, hundreds_gender: str | None) -> list[str]:
    if not t:
        return []
    grammar = _GRAMMAR[lang]
    if t == 1 and grammar.bare_thousand:
        return ["thousand"]
    # one before thousand takes its short form: es "veintiún mil", de "hunderteintausend"
    return [*_below_1000(t, hundreds_gender, "m" if grammar.inflects else None), "thousand"]


def _below_1000(n: int, hundreds_gender: str | None, ones_gender: str | None) -> list[str]:
    hundreds, rest = divmod(n, 100)
    names = []
    if hundreds == 1:
        names.append("num_100_plus" if rest else "num_100")  # es "cien" / "ciento uno"
    elif hundreds:
        names.append(f"num_{hundreds}00_f" if hundreds_gender == "f" else f"num_{hundreds}00")
    if rest % 10 == 1 and rest != 11 and ones_gender:
        names.append(f"num_{rest}_{ones_gender}")
    elif rest:
        names.append(f"num_{rest}")
    return names
