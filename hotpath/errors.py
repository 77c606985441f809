"""Exceptions shared by the Cython modules and their pure-Python twins."""


class BackendUnavailable(Exception):
    """Redis is unreachable and no usable cached record exists: routing answers 503."""


class InvalidTranslationRule(ValueError):
    """A translation rule is not `s/pattern/replacement/flags` (or a `;` list of them)."""
