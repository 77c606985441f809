"""Numbers, durations and amounts as prompt sequences in en, es, fr, de (ivr.say)."""
from __future__ import annotations

import re
import threading
from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr import prompts, say, vocabulary

pytestmark = pytest.mark.unit

LANGS = ("en", "es", "fr", "de")


def names(spec: str) -> list[str]:
    """Shorthand for an expected sequence: "2 thousand 300 45" -> num_2 thousand num_300 num_45."""
    return [f"num_{token}" if token[0].isdigit() else token for token in spec.split()]


# n, en, es, fr, de
NUMBERS = [
    (0, "0", "0", "0", "0"),
    (1, "1", "1", "1", "1"),
    (7, "7", "7", "7", "7"),
    (15, "15", "15", "15", "15"),
    (21, "21", "21", "21", "21"),
    (45, "45", "45", "45", "45"),
    (70, "70", "70", "70", "70"),
    (77, "77", "77", "77", "77"),
    (80, "80", "80", "80", "80"),
    (99, "99", "99", "99", "99"),
    (100, "100", "100", "100", "100"),
    (101, "100_plus 1", "100_plus 1", "100_plus 1", "100_plus 1"),
    (115, "100_plus 15", "100_plus 15", "100_plus 15", "100_plus 15"),
    (200, "200", "200", "200", "200"),
    (345, "300 45", "300 45", "300 45", "300 45"),
    (1000, "1 thousand", "thousand", "thousand", "thousand"),
    (1001, "1 thousand 1", "thousand 1", "thousand 1", "thousand 1"),
    (2000, "2 thousand", "2 thousand", "2 thousand", "2 thousand"),
    (2345, "2 thousand 300 45", "2 thousand 300 45", "2 thousand 300 45", "2 thousand 300 45"),
    (21000, "21 thousand", "21_m thousand", "21_m thousand", "21_m thousand"),
    (100000, "100 thousand", "100 thousand", "100 thousand", "100 thousand"),
    (101000, "100_plus 1 thousand", "100_plus 1_m thousand", "100_plus 1_m thousand",
     "100_plus 1_m thousand"),
    (1000000, "1 million", "1_m million", "1_m million", "1_f million"),
    (2000000, "2 millions", "2 millions", "2 millions", "2 millions"),
    (21000000, "21 millions", "21_m millions", "21_m millions", "21 millions"),
    (-5, "minus 5", "minus 5", "minus 5", "minus 5"),
]


@pytest.mark.parametrize("n, en, es, fr, de", NUMBERS)
def test_numbers(n, en, es, fr, de):
    for lang, expected in zip(LANGS, (en, es, fr, de), strict=True):
        assert say.number(n, lang) == names(expected), lang


@pytest.mark.parametrize("lang, n, text", [
    ("en", 0, "zero"),
    ("en", 15, "fifteen"),
    ("en", 345, "three hundred forty-five"),
    ("en", 2345, "two thousand three hundred forty-five"),
    ("en", 101000, "one hundred one thousand"),
    ("en", 2000000, "two million"),
    ("en", 999_999_999, "nine hundred ninety-nine million nine hundred ninety-nine thousand "
                        "nine hundred ninety-nine"),
    ("en", -21, "minus twenty-one"),
    ("es", 1, "uno"),
    ("es", 16, "dieciséis"),
    ("es", 100, "cien"),
    ("es", 101, "ciento uno"),
    ("es", 1000, "mil"),
    ("es", 2000, "dos mil"),
    ("es", 21000, "veintiún mil"),
    ("es", 1000000, "un millón"),
    ("es", 2000000, "dos millones"),
    ("fr", 71, "soixante et onze"),
    ("fr", 77, "soixante-dix-sept"),
    ("fr", 80, "quatre-vingts"),
    ("fr", 200, "deux cents"),
    ("fr", 1000, "mille"),
    ("fr", 2000, "deux mille"),
    ("fr", 21000, "vingt et un mille"),
    ("fr", 2000000, "deux millions"),
    ("de", 1, "eins"),
    ("de", 25, "fünfundzwanzig"),
    ("de", 100, "einhundert"),
    ("de", 1000, "tausend"),
    ("de", 2000, "zwei tausend"),
    ("de", 101000, "einhundert ein tausend"),
    ("de", 1000000, "eine Million"),
])
def test_spoken_numbers(lang, n, text):
    assert say.spoken(say.number(n, lang), lang) == text


@pytest.mark.parametrize("n", [1_000_000_000, -1_000_000_000])
def test_numbers_beyond_a_billion_are_refused(n):
    with pytest.raises(ValueError):
        say.number(n, "en")


@pytest.mark.parametrize("n", [1.0, "1", True, D(1)])
def test_a_number_is_an_int(n):
    with pytest.raises(TypeError):
        say.number(n, "en")


# seconds, rounding, English
DURATIONS = [
    (349, "none", "five minutes and forty-nine seconds"),
    (349, "up", "six minutes"),
    (360, "up", "six minutes"),
    (360, "none", "six minutes"),
    (60, "none", "one minute"),
    (61, "none", "one minute and one second"),
    (61, "up", "two minutes"),
    (1, "none", "one second"),
    (1, "up", "one minute"),
    (3599, "up", "one hour"),
    (3600, "none", "one hour"),
    (3605, "none", "one hour and five seconds"),
    (3725, "none", "one hour two minutes and five seconds"),
    (3725, "up", "one hour and three minutes"),
    (7322, "none", "two hours two minutes and two seconds"),
    (0, "none", "zero seconds"),
    (0, "up", "zero minutes"),
]


@pytest.mark.parametrize("seconds, rounding, text", DURATIONS)
def test_english_durations(seconds, rounding, text):
    assert say.spoken(say.duration(seconds, "en", rounding), "en") == text


# seconds, rounding, en, es, fr, de
DURATION_NAMES = [
    (349, "none", *["5 minutes and 49 seconds"] * 4),
    (349, "up", *["6 minutes"] * 4),
    (61, "none", "1 minute and 1 second", "1_m minute and 1_m second",
     "1_f minute and 1_f second", "1_f minute and 1_f second"),
    (3725, "none", "1 hour 2 minutes and 5 seconds", *["1_f hour 2 minutes and 5 seconds"] * 3),
    (1260, "none", "21 minutes", "21_m minutes", "21_f minutes", "21 minutes"),
    (0, "none", "0 seconds", "0 seconds", "0 second", "0 seconds"),
    (0, "up", "0 minutes", "0 minutes", "0 minute", "0 minutes"),
]


@pytest.mark.parametrize("seconds, rounding, en, es, fr, de", DURATION_NAMES)
def test_durations(seconds, rounding, en, es, fr, de):
    for lang, expected in zip(LANGS, (en, es, fr, de), strict=True):
        assert say.duration(seconds, lang, rounding) == names(expected), lang


@pytest.mark.parametrize("lang, seconds, rounding, text", [
    ("es", 349, "none", "cinco minutos y cuarenta y nueve segundos"),
    ("es", 61, "none", "un minuto y un segundo"),
    ("es", 3725, "none", "una hora dos minutos y cinco segundos"),
    ("es", 1260, "none", "veintiún minutos"),
    ("fr", 349, "up", "six minutes"),
    ("fr", 3725, "none", "une heure deux minutes et cinq secondes"),
    ("fr", 1260, "none", "vingt et une minutes"),
    ("de", 61, "none", "eine Minute und eine Sekunde"),
    ("de", 3600, "none", "eine Stunde"),
])
def test_spoken_durations(lang, seconds, rounding, text):
    assert say.spoken(say.duration(seconds, lang, rounding), lang) == text


def test_bad_durations_are_refused():
    with pytest.raises(ValueError):
        say.duration(-1, "en")
    with pytest.raises(ValueError):
        say.duration(60, "en", "down")
    with pytest.raises(TypeError):
        say.duration(60.0, "en")


# value, currency, English
AMOUNTS = [
    ("12.50", "USD", "twelve dollars and fifty cents"),
    ("1.01", "USD", "one dollar and one cent"),
    ("0.05", "USD", "five cents"),
    ("3", "USD", "three dollars"),
    ("1000.99", "USD", "one thousand dollars and ninety-nine cents"),
    ("-12.50", "USD", "minus twelve dollars and fifty cents"),
    ("0", "USD", "zero dollars"),
    ("1000000", "USD", "one million dollars"),
    ("12.50", "usd", "twelve dollars and fifty cents"),
    ("12.50", "EUR", "twelve euros and fifty cents"),
    ("1.01", "EUR", "one euro and one cent"),
    ("1.01", "GBP", "one pound and one penny"),
    ("0.05", "GBP", "five pence"),
    ("1000.99", "GBP", "one thousand pounds and ninety-nine pence"),
    ("3", "CAD", "three Canadian dollars"),
    ("12.50", "XYZ", "twelve units and fifty hundredths"),
    ("1.01", "JPY", "one unit and one hundredth"),
    ("-0.05", "XYZ", "minus five hundredths"),
    # minor units rounded half-up
    ("0.005", "USD", "one cent"),
    ("2.345", "USD", "two dollars and thirty-five cents"),
    ("1.999", "USD", "two dollars"),
    ("0.004", "USD", "zero dollars"),
    ("-0.004", "USD", "zero dollars"),
    ("-0.005", "USD", "minus one cent"),
]


@pytest.mark.parametrize("value, currency, text", AMOUNTS)
def test_english_amounts(value, currency, text):
    assert say.spoken(say.amount(D(value), currency, "en"), "en") == text


@pytest.mark.parametrize("value, currency, lang, expected", [
    ("12.50", "USD", "en", "12 cur_USD_majors and 50 cur_USD_minors"),
    ("1.01", "USD", "es", "1_m cur_USD_major and 1_m cur_USD_minor"),
    ("1.01", "GBP", "es", "1_f cur_GBP_major and 1_m cur_GBP_minor"),
    ("1.01", "GBP", "fr", "1_f cur_GBP_major and 1_m cur_GBP_minor"),
    ("1.01", "EUR", "de", "1_m cur_EUR_major and 1_m cur_EUR_minor"),
    ("1.01", "XYZ", "de", "1_f cur_unit and 1_m cur_hundredth"),
    ("21", "GBP", "es", "21_f cur_GBP_majors"),
    ("200", "GBP", "es", "200_f cur_GBP_majors"),
    ("200000", "GBP", "es", "200_f thousand cur_GBP_majors"),
    ("2000000", "EUR", "fr", "2 millions cur_EUR_majors_of"),
    ("2000001", "EUR", "fr", "2 millions 1_m cur_EUR_majors"),
    ("-3", "EUR", "de", "minus 3 cur_EUR_majors"),
])
def test_amounts(value, currency, lang, expected):
    assert say.amount(D(value), currency, lang) == names(expected)


@pytest.mark.parametrize("lang, value, currency, text", [
    ("es", "12.50", "USD", "doce dólares y cincuenta centavos"),
    ("es", "1.01", "USD", "un dólar y un centavo"),
    ("es", "0.05", "EUR", "cinco céntimos"),
    ("es", "1000.99", "USD", "mil dólares y noventa y nueve centavos"),
    ("es", "21", "GBP", "veintiuna libras"),
    ("es", "200", "GBP", "doscientas libras"),
    ("es", "1000000", "EUR", "un millón de euros"),
    ("es", "-3", "EUR", "menos tres euros"),
    ("fr", "1.01", "EUR", "un euro et un centime"),
    ("fr", "1.01", "GBP", "une livre et un penny"),
    ("fr", "1000000", "EUR", "un million d'euros"),
    ("fr", "1000.99", "USD", "mille dollars et quatre-vingt-dix-neuf centimes"),
    ("fr", "0", "EUR", "zéro euro"),
    ("de", "12.50", "EUR", "zwölf Euro und fünfzig Cent"),
    ("de", "1.01", "GBP", "ein Pfund und ein Penny"),
    ("de", "1.01", "XYZ", "eine Einheit und ein Hundertstel"),
    ("de", "1000.99", "USD", "tausend Dollar und neunundneunzig Cent"),
    ("de", "-0.05", "EUR", "minus fünf Cent"),
])
def test_spoken_amounts(lang, value, currency, text):
    assert say.spoken(say.amount(D(value), currency, lang), lang) == text


@pytest.mark.parametrize("value", [12.5, 12, "12.50"])
def test_an_amount_is_a_decimal(value):
    with pytest.raises(TypeError):
        say.amount(value, "USD", "en")


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1000000000", "1e30"])
def test_amounts_that_cannot_be_said(value):
    with pytest.raises(ValueError):
        say.amount(D(value), "USD", "en")


def test_digits_one_by_one():
    assert say.digits("+1 (555) 0199", "en") == names("1 5 5 5 0 1 9 9")
    assert say.digits("٣x", "de") == []  # non-ASCII digits are not ours to read
    assert say.spoken(say.digits("4545", "fr"), "fr") == "quatre cinq quatre cinq"


def test_unknown_language_is_english():
    assert say.number(2345, "xx") == say.number(2345, "en")
    assert say.duration(3725, "pt") == say.duration(3725, "en")
    assert say.amount(D("1.01"), "GBP", "") == say.amount(D("1.01"), "GBP", "en")
    assert say.words("xx") == say.words("en")


def test_words_cannot_be_changed_through_the_api():
    with pytest.raises(TypeError):
        say.words("en")["num_1"] = "won"  # type: ignore[index]


# --- the vocabulary --------------------------------------------------------------------

def test_every_language_has_every_name():
    assert set(vocabulary.WORDS) == set(say.LANGUAGES) == set(LANGS)
    expected = set(vocabulary.WORDS["en"])
    for lang, words in vocabulary.WORDS.items():
        assert set(words) == expected, lang
        assert all(text.strip() for text in words.values()), lang
    assert {f"num_{n}" for n in range(100)} <= expected
    assert {f"num_{h}00" for h in range(1, 10)} <= expected


def test_shipped_languages_have_prompts():
    assert set(say.LANGUAGES) <= set(prompts.TEXTS)


def test_names_are_file_names():
    for name in vocabulary.WORDS["en"]:
        assert re.fullmatch(r"[A-Za-z0-9_]+", name), name


def test_no_vocabulary_name_is_a_prompt_name():
    prompt_names = {name for texts in prompts.TEXTS.values() for name in texts}
    assert not prompt_names & set(vocabulary.WORDS["en"])


def test_every_counted_noun_has_a_gender():
    for lang in LANGS:
        assert set(vocabulary.GENDERS[lang]) == set(vocabulary.NOUNS)
        assert set(vocabulary.GENDERS[lang].values()) <= {"m", "f"}


# --- properties: whatever is said can be played ----------------------------------------

any_lang = st.sampled_from((*LANGS, "xx"))


def assert_known(sequence: list[str], lang: str) -> None:
    assert sequence
    known = say.words(lang)
    assert [name for name in sequence if name not in known] == []


@given(st.integers(-say.MAX_NUMBER, say.MAX_NUMBER), any_lang)
def test_every_number_can_be_played(n, lang):
    sequence = say.number(n, lang)
    assert_known(sequence, lang)
    assert (sequence[0] == "minus") == (n < 0)
    if n < 0:
        assert sequence[1:] == say.number(-n, lang)


@given(st.integers(0, 10 * 86400), st.sampled_from(say.ROUNDINGS), any_lang)
def test_every_duration_can_be_played(seconds, rounding, lang):
    sequence = say.duration(seconds, lang, rounding)
    assert_known(sequence, lang)
    if rounding == "up":
        assert not {"second", "seconds"} & set(sequence)


@given(st.decimals(min_value=-999_999_999, max_value=999_999_999, places=4,
                   allow_nan=False, allow_infinity=False),
       st.sampled_from(("USD", "EUR", "GBP", "CAD", "JPY", "xyz")), any_lang)
def test_every_amount_can_be_played(value, currency, lang):
    sequence = say.amount(value, currency, lang)
    assert_known(sequence, lang)
    cents = value.quantize(D("0.01"), rounding="ROUND_HALF_UP")
    assert (sequence[0] == "minus") == (cents < 0)


@given(st.text(max_size=30), any_lang)
def test_every_digit_string_can_be_played(text, lang):
    sequence = say.digits(text, lang)
    assert len(sequence) == sum(char in "0123456789" for char in text)
    assert set(sequence) <= set(say.words(lang))


# --- prompts.build synthesizes the vocabulary too --------------------------------------

def test_build_synthesizes_prompts_and_vocabulary(tmp_path, monkeypatch):
    calls = []
    lock = threading.Lock()

    def fake_synthesize(text, lang, out, word=False):
        with lock:
            calls.append((text, lang, out))
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(b"RIFF")

    monkeypatch.setattr(prompts, "synthesize", fake_synthesize)
    written = prompts.build(tmp_path, ["es", "es"])
    expected = set(prompts.TEXTS["es"]) | set(vocabulary.WORDS["es"])
    tones = set(prompts.TONES) | {"music"}  # written by build_tones, not synthesized
    assert sorted(p.stem for p in written) == sorted(expected | tones)
    assert len(calls) == len(expected)
    assert (vocabulary.WORDS["es"]["num_100"], "es", tmp_path / "es" / "num_100.wav") in calls
    assert prompts.build(tmp_path, ["es"]) == []  # existing files are kept


def test_build_fails_when_a_prompt_fails(tmp_path, monkeypatch):
    def fake_synthesize(text, lang, out, word=False):
        if out.stem == "num_42":
            raise RuntimeError("espeak-ng failed")

    monkeypatch.setattr(prompts, "synthesize", fake_synthesize)
    with pytest.raises(RuntimeError, match="espeak-ng failed"):
        prompts.build(tmp_path, ["de"])
