"""A call's context in its dialog (kemi.callvars) with a fake KSR: packed into one variable,
the fields later requests change in their own, and calls stored one variable per field
(before an upgrade) still read and billed as stored."""
from __future__ import annotations

from tests.unit import fake_ksr

fake_ksr.install()
from kemi import callvars  # noqa: E402
from kemi.constants import DLG_CONTEXT, DLG_VARS, dlg_var  # noqa: E402


def fresh():
    return fake_ksr.install()


def test_the_invites_fields_all_go_into_one_variable():
    ksr = fresh()
    callvars.put({"payer": "17785551209", "customer": 3, "leg": "toll", "cli": "a&b=c d",
                  "setup_ts": "1795300000.000", "reserved": "1.20", "max_duration": 600,
                  "slot": "", "forwarded": None}, fresh=True)
    dialog_vars = sorted(k for k in ksr.pvs if k.startswith("$dlg_var("))
    assert dialog_vars == [DLG_CONTEXT]  # one dialog_vars row for the INVITE
    assert callvars.get("cli") == "a&b=c d" and callvars.get("customer") == "3"
    assert callvars.get("slot") == "" and callvars.get("connect_ts") == ""
    values = callvars.read()
    assert set(values) == set(DLG_VARS)
    assert (values["payer"], values["reserved"], values["max_duration"]) == (
        "17785551209", "1.20", "600")


def test_a_later_change_keeps_the_other_packed_fields():
    fresh()
    callvars.put({"payer": "1001", "cld": "12125550123", "access_code": ""}, fresh=True)
    callvars.put({"cld": "44207946000", "access_code": "LEG_B"})
    callvars.put({"connect_ts": "1795300003.250"})
    assert (callvars.get("payer"), callvars.get("cld"), callvars.get("access_code"),
            callvars.get("connect_ts")) == ("1001", "44207946000", "LEG_B", "1795300003.250")
    callvars.put({"access_code": ""})
    assert callvars.get("access_code") == "" and callvars.get("payer") == "1001"


def test_a_call_stored_one_variable_per_field_reads_and_changes_as_stored():
    ksr = fresh()
    for name, value in {"payer": "1001", "customer": "3", "leg": "out", "cld": "447700900123",
                        "connect_ts": "1795300003.250", "forwarded": "1"}.items():
        ksr.pvs[dlg_var(name)] = value  # what an older version stored
    assert callvars.get("payer") == "1001" and callvars.read()["leg"] == "out"
    callvars.put({"forwarded": ""})  # the first change packs what was stored
    assert ksr.pvs[DLG_CONTEXT]
    values = callvars.read()
    assert (values["payer"], values["customer"], values["leg"], values["cld"],
            values["forwarded"], values["connect_ts"]) == (
        "1001", "3", "out", "447700900123", "", "1795300003.250")


def test_a_fresh_relay_over_a_packed_context_keeps_it():
    fresh()
    callvars.put({"payer": "1001", "in_leg": "in"}, fresh=True)
    callvars.put({"leg": "out"}, fresh=True)  # relayed again (a failover), still one call
    assert (callvars.get("payer"), callvars.get("in_leg"), callvars.get("leg")) == (
        "1001", "in", "out")


def test_a_changing_field_set_later_gets_its_own_variable_which_wins_over_the_packed_one():
    ksr = fresh()
    callvars.put({"payer": "1001", "reserved": "1.20", "max_duration": 600}, fresh=True)
    callvars.put({"connect_ts": "1795300003.250", "max_duration": 900})
    assert ksr.pvs[dlg_var("connect_ts")] == "1795300003.250"
    assert ksr.pvs[dlg_var("max_duration")] == "900"
    assert dlg_var("reserved") not in ksr.pvs  # unchanged: still only packed
    values = callvars.read()
    assert (values["max_duration"], values["reserved"], values["connect_ts"]) == (
        "900", "1.20", "1795300003.250")
    assert callvars.get("max_duration") == "900" and callvars.get("reserved") == "1.20"


def test_a_changing_field_emptied_later_reads_empty_not_its_first_value():
    ksr = fresh()
    callvars.put({"payer": "1001", "reserved": "1.20"}, fresh=True)
    callvars.put({"reserved": None})
    assert ksr.pvs[dlg_var("reserved")] == callvars.CLEARED
    assert callvars.get("reserved") == "" and callvars.read()["reserved"] == ""
    callvars.put({"reserved": "0.40"})
    assert callvars.get("reserved") == "0.40"
