"""Cython TranslationRule: sed-style rules, anchored literals applied without a regex."""
cimport cython

from hotpath._rules import parse
from hotpath.errors import InvalidTranslationRule

__all__ = ["TranslationRule", "InvalidTranslationRule", "validate_rule"]

cdef enum:
    # Must equal hotpath._rules' PREFIX..REGEX.
    PREFIX, SUFFIX, EXACT, LITERAL, REGEX


@cython.final
cdef class _Step:
    cdef int kind, count
    cdef str literal, replacement
    cdef object regex


def validate_rule(text):
    """Raise InvalidTranslationRule (a ValueError, one-line message) unless `text` compiles."""
    parse(text)


@cython.final
@cython.binding(False)  # plain method descriptors: CPython 3.11 specializes calls to them
cdef class TranslationRule:
    """A compiled rule list: `s/^0/ani44/` turns "021234567" into "ani4421234567"."""
    cdef readonly str text
    cdef list _steps

    def __init__(self, text=""):
        cdef _Step step
        self._steps = []
        for kind, literal, replacement, count, regex in parse(text):
            step = _Step.__new__(_Step)
            step.kind, step.literal, step.replacement, step.count, step.regex = (
                kind, literal, replacement, count, regex)
            self._steps.append(step)
        self.text = text

    def apply(self, str number not None):
        """`number` after every rule in order; a rule that does not match leaves it unchanged."""
        cdef _Step step
        for step in self._steps:
            if step.kind == PREFIX:
                if number.startswith(step.literal):
                    number = step.replacement + number[len(step.literal):]
            elif step.kind == SUFFIX:
                if number.endswith(step.literal):
                    number = number[:len(number) - len(step.literal)] + step.replacement
            elif step.kind == EXACT:
                if number == step.literal:
                    number = step.replacement
            elif step.kind == LITERAL:
                number = number.replace(step.literal, step.replacement, step.count or -1)
            else:
                number = step.regex.sub(step.replacement, number, step.count)
        return number

    def __repr__(self):
        return f"TranslationRule({self.text!r})"
