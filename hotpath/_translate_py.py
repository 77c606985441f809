"""Pure-Python twin of hotpath._translate: sed-style number translation rules."""
from __future__ import annotations

from hotpath._rules import EXACT, LITERAL, PREFIX, SUFFIX, parse
from hotpath.errors import InvalidTranslationRule

__all__ = ["TranslationRule", "InvalidTranslationRule", "validate_rule"]


def validate_rule(text: str) -> None:
    """Raise InvalidTranslationRule (a ValueError, one-line message) unless `text` compiles."""
    parse(text)


class TranslationRule:
    """A compiled rule list: `s/^0/ani44/` turns "021234567" into "ani4421234567"."""

    def __init__(self, text: str = ""):
        self.text = text
        self._steps = parse(text)

    def apply(self, number: str) -> str:
        """`number` after every rule in order; a rule that does not match leaves it unchanged."""
        if not isinstance(number, str):
            raise TypeError(f"number must be str, not {type(number).__name__}")
        for kind, literal, replacement, count, regex in self._steps:
            if kind == PREFIX:
                if number.startswith(literal):
                    number = replacement + number[len(literal):]
            elif kind == SUFFIX:
                if number.endswith(literal):
                    number = number[:len(number) - len(literal)] + replacement
            elif kind == EXACT:
                if number == literal:
                    number = replacement
            elif kind == LITERAL:
                number = number.replace(literal, replacement, count or -1)
            else:
                number = regex.sub(replacement, number, count)
        return number

    def __repr__(self) -> str:
        return f"TranslationRule({self.text!r})"
