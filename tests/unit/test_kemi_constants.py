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


def test_the_cfg_declares_exactly_the_htables_kemi_uses():
    declared = set(re.findall(r'modparam\("htable",\s*"htable",\s*"(\w+)=>', CFG.read_text()))
    assert declared == {constants.HT_IPBAN, constants.HT_AUTHFAIL}


def test_every_route_name_is_a_router_method():
    from tests.unit import fake_ksr
    fake_ksr.install()
    from kemi.router import Router
    for name in (constants.ROUTE_ONREPLY, constants.ROUTE_FAILURE, constants.ROUTE_BRANCH_IVR,
                 constants.ROUTE_BRANCH_FOLLOW_ME):
        assert callable(getattr(Router, name, None)), name
    assert '"event_callback", "ksr_dialog_event"' in CFG.read_text()


KEMI = CFG.parent / "kemi"
SPELLED = re.compile(r"""["'](\$avp\(|\$dlg_var\(|ksr_\w+["']|ipban|authfail)""")


def test_no_kemi_module_spells_a_shared_name():
    hits = [f"{p.name}:{n}: {line.strip()}" for p in sorted(KEMI.glob("*.py"))
            if p.name != "constants.py"
            for n, line in enumerate(p.read_text().splitlines(), 1) if SPELLED.search(line)]
    assert hits == [], "use kemi.constants"
