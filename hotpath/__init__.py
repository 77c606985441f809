"""tollgate hot path: record cache, longest-prefix match, translation rules.

The Cython build is used when present; TOLLGATE_PUREPYTHON=1 (or a missing build) selects
the pure-Python twins, which share the API and are the reference in tests.
"""
import os

from hotpath.errors import BackendUnavailable, InvalidTranslationRule

if os.environ.get("TOLLGATE_PUREPYTHON"):
    from hotpath._cache_py import RecordCache
    from hotpath._prefix_py import PrefixTable
    from hotpath._translate_py import TranslationRule, validate_rule
    IMPLEMENTATION = "python"
else:
    try:
        from hotpath._cache import RecordCache
        from hotpath._prefix import PrefixTable
        from hotpath._translate import TranslationRule, validate_rule
        IMPLEMENTATION = "cython"
    except ImportError:
        from hotpath._cache_py import RecordCache
        from hotpath._prefix_py import PrefixTable
        from hotpath._translate_py import TranslationRule, validate_rule
        IMPLEMENTATION = "python"

__all__ = ["IMPLEMENTATION", "BackendUnavailable", "InvalidTranslationRule", "PrefixTable",
           "RecordCache", "TranslationRule", "validate_rule"]
