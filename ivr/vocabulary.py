"""The words the IVR builds numbers, durations and amounts from, one prompt per word.

`WORDS[lang][name]` is the text espeak-ng synthesizes into DIR/<lang>/<name>.wav
(`ivr.prompts.build`); `ivr.say` returns sequences of these names. Every language has
every name, so a sequence composed for one language can always be played; where a
language does not distinguish a form, the name holds the same text as the plain one.

Names:

- `num_0` .. `num_99`: each one word or compound as said alone ("twenty-one",
  "veintiuno", "soixante-dix-sept", "fünfundzwanzig"); `num_0` .. `num_9` are the digits.
  A few are given to espeak-ng as digits, which it reads better than their spelling
  (`_READ_AS_DIGITS`).
- `num_100` .. `num_900`: a round hundred said alone ("one hundred", "cien", "deux cents",
  "einhundert"); `num_100_plus`: one hundred followed by more (es "ciento uno").
- `num_200_f` .. `num_900_f`: feminine hundreds (es "doscientas libras"; the others
  have no such form).
- `num_1_m`, `num_1_f`, `num_21_m`, `num_21_f` .. `num_91_m`, `num_91_f`: a count ending in
  one before a masculine (or neuter) and a feminine noun: es "un minuto", "una hora",
  "veintiún minutos", "veintiuna horas"; fr "une minute", "vingt et une secondes"; de "ein
  Dollar", "eine Minute" (in German only one itself inflects).
- `thousand`, `million`, `millions` (en "two million": `millions` is "million"), `and`,
  `minus`, `point`.
- `hour(s)`, `minute(s)`, `second(s)`.
- `cur_<ISO>_major`, `_majors`, `_minor`, `_minors` for USD, EUR, GBP, CAD, and
  `cur_<ISO>_majors_of`: the plural after a round million (es "un millón de dólares",
  fr "un million d'euros"); `cur_unit(s)`, `cur_units_of`, `cur_hundredth(s)`: any
  other currency ("units", "hundredths").

Choices: English is American ("one hundred one", no "and" inside a number). French cents
are "centimes" (the French "cent" reads as a hundred); Spanish US and Canadian cents are
"centavos", euro cents "céntimos". German counts money in the singular ("zwölf Dollar",
"fünfzig Cent"). `GENDERS` holds the gender of each counted noun, "m" standing for
masculine and neuter alike (de "ein Pfund").
"""
from __future__ import annotations

LANGUAGES = ("en", "es", "fr", "de")
CURRENCIES = ("USD", "EUR", "GBP", "CAD")
ONE_FORMS = (1, 21, 31, 41, 51, 61, 71, 81, 91)  # the counts with num_<n>_m and num_<n>_f

# --- numbers below a thousand, per language ---------------------------------------------

_EN_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen "
            "fourteen fifteen sixteen seventeen eighteen nineteen").split()
_EN_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty",
            "ninety")

_ES_ONES = ("cero uno dos tres cuatro cinco seis siete ocho nueve diez once doce trece "
            "catorce quince dieciséis diecisiete dieciocho diecinueve veinte veintiuno "
            "veintidós veintitrés veinticuatro veinticinco veintiséis veintisiete "
            "veintiocho veintinueve").split()
_ES_TENS = ("", "", "", "treinta", "cuarenta", "cincuenta", "sesenta", "setenta", "ochenta",
            "noventa")
_ES_HUNDREDS = ("", "cien", "doscientos", "trescientos", "cuatrocientos", "quinientos",
                "seiscientos", "setecientos", "ochocientos", "novecientos")

_FR_ONES = ("zéro un deux trois quatre cinq six sept huit neuf dix onze douze treize "
            "quatorze quinze seize dix-sept dix-huit dix-neuf").split()
_FR_TENS = ("", "", "vingt", "trente", "quarante", "cinquante", "soixante")

_DE_ONES = ("null eins zwei drei vier fünf sechs sieben acht neun zehn elf zwölf dreizehn "
            "vierzehn fünfzehn sechzehn siebzehn achtzehn neunzehn").split()
_DE_TENS = ("", "", "zwanzig", "dreißig", "vierzig", "fünfzig", "sechzig", "siebzig",
            "achtzig", "neunzig")


def _en(n: int) -> str:
    tens, one = divmod(n, 10)
    if n < 20:
        return _EN_ONES[n]
    return _EN_TENS[tens] + (f"-{_EN_ONES[one]}" if one else "")


def _es(n: int) -> str:
    tens, one = divmod(n, 10)
    if n < 30:
        return _ES_ONES[n]
    return _ES_TENS[tens] + (f" y {_ES_ONES[one]}" if one else "")


def _fr(n: int) -> str:
    tens, one = divmod(n, 10)
    if n < 20:
        return _FR_ONES[n]
    if n < 70:
        if one == 1:
            return f"{_FR_TENS[tens]} et un"
        return _FR_TENS[tens] + (f"-{_FR_ONES[one]}" if one else "")
    if n == 71:
        return "soixante et onze"
    if n < 80:
        return f"soixante-{_FR_ONES[n - 60]}"
    if n == 80:
        return "quatre-vingts"
    return f"quatre-vingt-{_FR_ONES[n - 80]}"


def _de(n: int) -> str:
    tens, one = divmod(n, 10)
    if n < 20:
        return _DE_ONES[n]
    if not one:
        return _DE_TENS[tens]
    return ("ein" if one == 1 else _DE_ONES[one]) + "und" + _DE_TENS[tens]


# espeak-ng 1.51 reads these spelled numbers wrongly and their digits right: fr
# "quatre-vingt-deux" with the t of "vingt-deux", de "vierzig" with a long i and
# "-undvierzig" with a v
_READ_AS_DIGITS: dict[str, frozenset[int]] = {
    "en": frozenset(),
    "es": frozenset(),
    "fr": frozenset({*range(82, 90), 91}),
    "de": frozenset({14, *range(40, 50)}),
}


def _numbers(lang: str) -> dict[str, str]:
    """num_0 .. num_99, the hundreds and the gendered forms of one language."""
    say = {"en": _en, "es": _es, "fr": _fr, "de": _de}[lang]
    words = {f"num_{n}": str(n) if n in _READ_AS_DIGITS[lang] else say(n) for n in range(100)}
    for h in range(1, 10):
        words[f"num_{h}00"] = {
            "en": f"{_EN_ONES[h]} hundred",
            "es": _ES_HUNDREDS[h],
            "fr": "cent" if h == 1 else f"{_FR_ONES[h]} cents",
            "de": ("ein" if h == 1 else _DE_ONES[h]) + "hundert",
        }[lang]
    words["num_100_plus"] = "ciento" if lang == "es" else words["num_100"]
    for h in range(2, 10):
        plain = words[f"num_{h}00"]
        words[f"num_{h}00_f"] = plain.replace("ientos", "ientas") if lang == "es" else plain
    for n in ONE_FORMS:
        plain = words[f"num_{n}"]
        words[f"num_{n}_m"], words[f"num_{n}_f"] = {
            "en": (plain, plain),
            "es": (plain.removesuffix("uno") + ("ún" if n == 21 else "un"),
                   plain.removesuffix("uno") + "una"),
            "fr": (plain, plain.removesuffix("un") + "une" if plain.endswith("un") else plain),
            "de": ("ein", "eine") if n == 1 else (plain, plain),
        }[lang]
    return words


# --- everything else: name -> text per language -------------------------------------------

_OTHER: dict[str, tuple[str, str, str, str]] = {  # en, es, fr, de
    "thousand": ("thousand", "mil", "mille", "tausend"),
    "million": ("million", "millón", "million", "Million"),
    "millions": ("million", "millones", "millions", "Millionen"),
    "and": ("and", "y", "et", "und"),
    "minus": ("minus", "menos", "moins", "minus"),
    "point": ("point", "coma", "virgule", "Komma"),
    "hour": ("hour", "hora", "heure", "Stunde"),
    "hours": ("hours", "horas", "heures", "Stunden"),
    "minute": ("minute", "minuto", "minute", "Minute"),
    "minutes": ("minutes", "minutos", "minutes", "Minuten"),
    "second": ("second", "segundo", "seconde", "Sekunde"),
    "seconds": ("seconds", "segundos", "secondes", "Sekunden"),
    "cur_USD_major": ("dollar", "dólar", "dollar", "Dollar"),
    "cur_USD_majors": ("dollars", "dólares", "dollars", "Dollar"),
    "cur_USD_majors_of": ("dollars", "de dólares", "de dollars", "Dollar"),
    "cur_USD_minor": ("cent", "centavo", "centime", "Cent"),
    "cur_USD_minors": ("cents", "centavos", "centimes", "Cent"),
    "cur_EUR_major": ("euro", "euro", "euro", "Euro"),
    "cur_EUR_majors": ("euros", "euros", "euros", "Euro"),
    "cur_EUR_majors_of": ("euros", "de euros", "d'euros", "Euro"),
    "cur_EUR_minor": ("cent", "céntimo", "centime", "Cent"),
    "cur_EUR_minors": ("cents", "céntimos", "centimes", "Cent"),
    "cur_GBP_major": ("pound", "libra", "livre", "Pfund"),
    "cur_GBP_majors": ("pounds", "libras", "livres", "Pfund"),
    "cur_GBP_majors_of": ("pounds", "de libras", "de livres", "Pfund"),
    "cur_GBP_minor": ("penny", "penique", "penny", "Penny"),
    "cur_GBP_minors": ("pence", "peniques", "pence", "Pence"),
    "cur_CAD_major": ("Canadian dollar", "dólar canadiense", "dollar canadien",
                      "kanadischer Dollar"),
    "cur_CAD_majors": ("Canadian dollars", "dólares canadienses", "dollars canadiens",
                       "kanadische Dollar"),
    "cur_CAD_majors_of": ("Canadian dollars", "de dólares canadienses",
                          "de dollars canadiens", "kanadische Dollar"),
    "cur_CAD_minor": ("cent", "centavo", "centime", "Cent"),
    "cur_CAD_minors": ("cents", "centavos", "centimes", "Cent"),
    "cur_unit": ("unit", "unidad", "unité", "Einheit"),
    "cur_units": ("units", "unidades", "unités", "Einheiten"),
    "cur_units_of": ("units", "de unidades", "d'unités", "Einheiten"),
    "cur_hundredth": ("hundredth", "centésima", "centième", "Hundertstel"),
    "cur_hundredths": ("hundredths", "centésimas", "centièmes", "Hundertstel"),
}

# the gender of each counted noun: "un minuto"/"una hora", "une minute", "eine Stunde"
_FEMININE: dict[str, frozenset[str]] = {
    "en": frozenset(),
    "es": frozenset({"hour", "cur_GBP_major", "cur_unit", "cur_hundredth"}),
    "fr": frozenset({"hour", "minute", "second", "cur_GBP_major", "cur_unit"}),
    "de": frozenset({"hour", "minute", "second", "million", "cur_unit"}),
}
NOUNS = ("hour", "minute", "second", "million", "cur_unit", "cur_hundredth",
         *(f"cur_{code}_{unit}" for code in CURRENCIES for unit in ("major", "minor")))

WORDS: dict[str, dict[str, str]] = {
    lang: _numbers(lang) | {name: texts[i] for name, texts in _OTHER.items()}
    for i, lang in enumerate(LANGUAGES)
}
GENDERS: dict[str, dict[str, str]] = {
    lang: {noun: "f" if noun in _FEMININE[lang] else "m" for noun in NOUNS}
    for lang in LANGUAGES
}
