"""kamailio.cfg's #!define flags and kemi/constants.py must agree."""
import re
from pathlib import Path

from kemi import constants

CFG = Path(__file__).resolve().parents[2] / "kamailio.cfg"


def test_every_cfg_define_matches_the_python_constant():
    defines = dict(re.findall(r"^#!define\s+(FL[TB]_\w+)\s+(\d+)", CFG.read_text(), re.M))
    assert defines, "kamailio.cfg defines no flags"
    for name, value in defines.items():
        assert getattr(constants, name) == int(value), name


def test_every_python_flag_is_defined_in_the_cfg():
    defines = set(re.findall(r"^#!define\s+(FL[TB]_\w+)", CFG.read_text(), re.M))
    python_flags = {n for n in dir(constants) if re.match(r"FL[TB]_", n)}
    assert python_flags == defines
