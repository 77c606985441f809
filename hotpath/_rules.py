"""Parser for sed-style translation rules, shared by hotpath._translate and its twin.

Grammar: `s<d>pattern<d>replacement<d>flags`, any delimiter <d> that is not a letter,
digit, backslash, space or `;`; rules joined by `;` apply in order; "" is the identity.
Patterns are Python `re` syntax (like `sed -E`); flags `g` (every match) and `i` (ignore
case); in the replacement `\\1`..`\\9` and `&` are groups, `\\&`, `\\\\` and `\\<d>` literals.
"""
from __future__ import annotations

import re
from typing import NamedTuple

from hotpath.errors import InvalidTranslationRule

PREFIX, SUFFIX, EXACT, LITERAL, REGEX = range(5)
_META = frozenset(".^$*+?{}[]|()\\")

# a pattern or replacement as scanned: a character, or (c,) for the escape \c
Piece = str | tuple[str]


class Step(NamedTuple):
    kind: int               # PREFIX/SUFFIX/EXACT/LITERAL take the no-regex fast path
    literal: str            # the text the fast kinds look for
    replacement: str        # fast kinds: the literal replacement; REGEX: an re template
    limit: int              # re.sub's count: 0 = every match (g), 1 = the first
    regex: re.Pattern[str]


def _bad(text: str, why: str) -> InvalidTranslationRule:
    return InvalidTranslationRule(f"invalid translation rule {text!r}: {why}")


def _scan(text: str, i: int, delim: str, what: str) -> tuple[list[Piece], int]:
    """Raw pieces up to the next unescaped `delim`: chars, or (escape-char,) tuples."""
    out: list[Piece] = []
    while i < len(text):
        c = text[i]
        if c == delim:
            return out, i + 1
        if c == "\\":
            if i + 1 == len(text):
                break
            out.append((text[i + 1],))
            i += 2
            continue
        out.append(c)
        i += 1
    raise _bad(text, f"unterminated {what}; expected s/pattern/replacement/flags")


def _pattern(pieces: list[Piece], delim: str) -> str:
    return "".join(re.escape(delim) if p == (delim,) else "\\" + p[0] if isinstance(p, tuple) else p
                   for p in pieces)


def _template(pieces: list[Piece], delim: str, text: str) -> tuple[list[str | int], int]:
    """Replacement as parts (str or group number) and the highest group it names."""
    parts: list[str | int] = []
    for p in pieces:
        if p == "&":
            parts.append(0)
        elif not isinstance(p, tuple):
            parts.append(p)
        elif p[0].isdigit():
            parts.append(int(p[0]))
        elif p[0] in ("&", "\\", delim):
            parts.append(p[0])
        else:
            raise _bad(text, f"unknown escape \\{p[0]} in the replacement")
    return parts, max((p for p in parts if isinstance(p, int)), default=0)


def _literal(pieces: list[Piece]) -> str | None:
    """The pattern's text when it has no regex operator (escaped punctuation counts as text)."""
    chars = []
    for p in pieces:
        if isinstance(p, tuple):
            if p[0].isalnum() or p[0] == "_":
                return None
            chars.append(p[0])
        elif p in _META:
            return None
        else:
            chars.append(p)
    return "".join(chars)


def _step(text: str, pieces: list[Piece], repl_pieces: list[Piece], flags: str,
          delim: str) -> Step:
    pattern = _pattern(pieces, delim)
    if not pattern:
        raise _bad(text, "empty pattern")
    try:
        regex = re.compile(pattern, re.IGNORECASE if "i" in flags else 0)
    except re.error as e:
        raise _bad(text, f"bad regular expression: {e}") from None
    parts, top = _template(repl_pieces, delim, text)
    if top > regex.groups:
        raise _bad(text, f"replacement names group {top}, the pattern has {regex.groups}")
    count = 0 if "g" in flags else 1
    start = bool(pieces) and pieces[0] == "^"
    end = len(pieces) > start and pieces[-1] == "$"
    literal = _literal(pieces[start:len(pieces) - end])
    if literal is not None and ("i" not in flags or literal.lower() == literal.upper()):
        kind = EXACT if start and end else PREFIX if start else SUFFIX if end else LITERAL
        # no groups in a literal pattern: the only group number is & (0), the match itself
        replacement = "".join(literal if isinstance(p, int) else p for p in parts)
        return Step(kind, literal, replacement, count, regex)
    template = "".join(f"\\g<{p}>" if isinstance(p, int) else p.replace("\\", "\\\\")
                       for p in parts)
    return Step(REGEX, "", template, count, regex)


def parse(text: str) -> list[Step]:
    """The steps of a rule list; raises InvalidTranslationRule with a one-line reason."""
    if not isinstance(text, str):
        raise InvalidTranslationRule(f"a translation rule must be text, not {type(text).__name__}")
    steps: list[Step] = []
    i, n = 0, len(text)
    if not text.strip():
        return steps
    while True:
        while i < n and text[i].isspace():
            i += 1
        if i == n:
            raise _bad(text, "empty rule after ';'")
        if text[i] != "s" or i + 1 == n:
            raise _bad(text, "expected s/pattern/replacement/flags")
        delim = text[i + 1]
        if delim.isalnum() or delim in "\\;_" or delim.isspace():
            raise _bad(text, f"{delim!r} cannot delimit a rule")
        pattern, i = _scan(text, i + 2, delim, "pattern")
        replacement, i = _scan(text, i, delim, "replacement")
        start = i
        while i < n and text[i] != ";" and not text[i].isspace():
            if text[i] not in "gi":
                raise _bad(text, f"unknown flag {text[i]!r} (only g and i)")
            i += 1
        steps.append(_step(text, pattern, replacement, text[start:i], delim))
        while i < n and text[i].isspace():
            i += 1
        if i == n:
            return steps
        if text[i] != ";":
            raise _bad(text, f"unexpected {text[i:]!r} after the flags")
        i += 1
