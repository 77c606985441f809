"""A capped call's timeout: both sides get one BYE each from the route, whatever the
billing steps before it did (the dialog module sends these dialogs none of its own)."""
import types

import pytest

from tests.unit import fake_ksr

fake_ksr.install()
from kemi import dialogs  # noqa: E402


@pytest.fixture
def ksr(monkeypatch):
    """A fake KSR whose dialog module records the BYEs asked of it (answering `refuse`d
    sides -1) and whose tm records the BYEs built from the dialog's record."""
    fake = fake_ksr.install()
    fake.byes, fake.sent, fake.refuse = [], [], set()

    def dlg_bye(side):
        fake.byes.append(side)
        return -1 if side in fake.refuse else 1

    def t_uac_send(method, uri, *rest):
        fake.sent.append((method, uri, rest[2]))
        return 1
    fake.dialog = types.SimpleNamespace(dlg_bye=dlg_bye)
    fake.tm = types.SimpleNamespace(t_uac_send=t_uac_send)
    fake.pvs.update({"$dlg(callid)": "cap-1", "$dlg(from_uri)": "sip:card@tollgate.local",
                     "$dlg(from_tag)": "a", "$dlg(from_contact)": "<sip:card@127.0.0.1:5062>",
                     "$dlg(from_cseq)": "2", "$dlg(to_uri)": "sip:12125550123@gw",
                     "$dlg(to_tag)": "b", "$dlg(to_contact)": "<sip:gw@127.0.0.1:5070>",
                     "$dlg(to_cseq)": "1"})
    return fake


def test_a_timeout_hangs_up_the_callee_then_the_caller_once_each(ksr, monkeypatch):
    monkeypatch.setattr(dialogs, "_on_event", lambda rt, event: 1)
    assert dialogs.on_event(None, dialogs.TIMEOUT) == 1
    assert ksr.byes == ["callee", "caller"] and not ksr.sent


def test_a_timeout_whose_billing_failed_still_hangs_up_both_sides(ksr, monkeypatch):
    def broken(rt, event):
        raise RuntimeError("redis gone")
    monkeypatch.setattr(dialogs, "_on_event", broken)
    with pytest.raises(RuntimeError):
        dialogs.on_event(None, dialogs.TIMEOUT)
    assert ksr.byes == ["callee", "caller"]


def test_a_side_the_module_refuses_gets_a_bye_built_from_the_dialog(ksr, monkeypatch):
    # the callee's 200 came back first and ended the dialog: the caller's BYE is refused
    monkeypatch.setattr(dialogs, "_on_event", lambda rt, event: 1)
    ksr.refuse.add("caller")
    dialogs.on_event(None, dialogs.TIMEOUT)
    assert ksr.byes == ["callee", "caller"]
    (method, uri, headers), = ksr.sent
    assert (method, uri) == ("BYE", "sip:card@127.0.0.1:5062")
    assert "From: <sip:12125550123@gw>;tag=b\r\nTo: <sip:card@tollgate.local>;tag=a\r\n" \
        in headers and "Call-ID: cap-1\r\n" in headers
    assert any("caller BYE at the cap sent straight to sip:card@127.0.0.1:5062" in line
               for line in ksr.logs)


@pytest.mark.parametrize("event", [dialogs.START, dialogs.END, dialogs.FAILED])
def test_other_dialog_events_send_no_bye(ksr, monkeypatch, event):
    monkeypatch.setattr(dialogs, "_on_event", lambda rt, event: 1)
    dialogs.on_event(None, event)
    assert not ksr.byes and not ksr.sent
