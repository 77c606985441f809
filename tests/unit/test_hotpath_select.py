"""hotpath/__init__.py picks the Cython build once, or the twins under TOLLGATE_PUREPYTHON=1."""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
PROBE = ("import hotpath; print(hotpath.IMPLEMENTATION, hotpath.RecordCache.__module__,"
         " hotpath.PrefixTable.__module__, hotpath.TranslationRule.__module__)")


def chosen(**env) -> list[str]:
    run_env = {k: v for k, v in os.environ.items() if k != "TOLLGATE_PUREPYTHON"} | env
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=run_env, check=True,
                         capture_output=True, text=True).stdout
    return out.split()


def test_env_override_selects_the_twins():
    assert chosen(TOLLGATE_PUREPYTHON="1") == [
        "python", "hotpath._cache_py", "hotpath._prefix_py", "hotpath._translate_py"]


def test_the_cython_build_is_preferred():
    if importlib.util.find_spec("hotpath._cache") is None:
        pytest.skip("Cython extensions are not built (python setup.py build_ext --inplace)")
    assert chosen() == ["cython", "hotpath._cache", "hotpath._prefix", "hotpath._translate"]


def test_exceptions_are_shared_by_both_implementations():
    import hotpath
    from hotpath import _cache_py, _translate_py
    assert _cache_py.BackendUnavailable is hotpath.BackendUnavailable
    assert _translate_py.InvalidTranslationRule is hotpath.InvalidTranslationRule
    assert issubclass(hotpath.InvalidTranslationRule, ValueError)
