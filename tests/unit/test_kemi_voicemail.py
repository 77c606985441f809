"""The voicemail route steps with a fake KSR (never proof that routing works: the e2e
voicemail tests are): who reaches a mailbox, where the IVR's message-waiting NOTIFY goes,
and when a call nobody answers is sent to voicemail."""
from __future__ import annotations

import itertools
import re
import time
import types

import pytest

from tests.unit import fake_ksr

fake_ksr.install()
from billing import xdr  # noqa: E402
from billing.classify import Decision  # noqa: E402
from billing.internal import Internal  # noqa: E402
from kemi import calls, callvars, voicemail  # noqa: E402
from kemi.constants import (  # noqa: E402
    AVP_FM_ACCOUNT,
    AVP_IVR_ACCOUNT,
    AVP_IVR_ANI,
    AVP_IVR_APP,
    AVP_VM_ACCOUNT,
    EXIT,
    FLT_FROM_IVR,
    LEG_IN,
    dlg_var,
)
from kemi.runtime import Request, Runtime  # noqa: E402
from tollgate import metrics  # noqa: E402
from tollgate.config import Settings  # noqa: E402
from tollgate.directory import Identity  # noqa: E402

pytestmark = pytest.mark.unit

GATEWAY = ("127.0.0.1", 5070)   # Settings().pstn_gateway
JANE = "42027777100"            # a DID account with voicemail
MOBILE = "420603123456"         # Jane's mobile: its alias 420603123456@pstn is hers
MARK = "42027777200"
MARKS_MOBILE = "420603999888"
STRANGER = "420777000111"
FOLLOW_ME = "420604555666"


class FakeDirectory:
    def __init__(self) -> None:
        self.accounts = {
            JANE: {"id": JANE, "customer_id": 3, "answering_mode": "ring_then_voicemail"},
            MARK: {"id": MARK, "customer_id": 3, "answering_mode": "ring"},
        }
        # an alias that is no number never counts, even one that names Jane
        self.aliases = {f"{MOBILE}@pstn": JANE, f"{MARKS_MOBILE}@pstn": MARK,
                        "anonymous@pstn": JANE}

    def account(self, account_id):
        return self.accounts.get(account_id)

    def identity(self, some_id):
        if some_id in self.accounts:
            return Identity(self.accounts[some_id], True)
        if some_id in self.aliases:
            return Identity(self.accounts[self.aliases[some_id]], False, via_alias=some_id)
        return None

    def customer(self, customer_id):
        return {"id": customer_id}


class FakeEmitter:
    def __init__(self) -> None:
        self.events: list[xdr.XdrEvent] = []

    def emit(self, data: bytes) -> bool:
        self.events.append(xdr.decode(data))
        return True


class FakeRuntime:
    """What the steps read of kemi.runtime.Runtime, without Redis."""
    ivr_uri = Runtime.ivr_uri
    gateway_uri = Runtime.gateway_uri

    def __init__(self) -> None:
        self.settings = Settings()
        self.directory = FakeDirectory()
        self.req = Request()
        self.turns = itertools.count()
        self.emitter = FakeEmitter()
        self.pid = 1


class Tm:
    """The tm functions the steps call; the reply code comes from $T_reply_code."""

    def __init__(self, pvs: dict) -> None:
        self.pvs = pvs
        self.fr: list[tuple[int, int]] = []
        self.routes: list[str] = []
        self.relayed = 0
        self.relay_result = 1
        self.canceled = False

    def t_set_fr(self, invite: int, non_invite: int) -> int:
        self.fr.append((invite, non_invite))
        return 1

    def t_on_branch(self, name: str) -> int:
        self.routes.append(name)
        return 1

    t_on_reply = t_on_failure = t_on_branch

    def t_relay(self) -> int:
        self.relayed += 1
        return self.relay_result

    def t_is_canceled(self) -> int:
        return 1 if self.canceled else -1

    def t_check_status(self, pattern: str) -> int:
        return 1 if re.fullmatch(pattern, str(self.pvs.get("$T_reply_code"))) else -1


@pytest.fixture
def ksr():
    """The shared fake KSR, with what these steps also call: tm, the registrar (phones of
    `registered` accounts), dialog, rr, rtpengine, pv.unset, is_method."""
    fake = fake_ksr.install()
    fake.tm = Tm(fake.pvs)
    fake.registered = set()
    fake.lookups = []

    def lookup(table):
        fake.lookups.append(fake.pvs.get("$rU"))
        return 1 if fake.pvs.get("$rU") in fake.registered else -1

    fake.registrar = types.SimpleNamespace(lookup=lookup)
    fake.timeouts = []
    fake.dialog = types.SimpleNamespace(dlg_manage=lambda: 1, dlg_set_property=lambda p: 1,
                                        dlg_set_timeout=lambda s: fake.timeouts.append(s) or 1)
    fake.rr = types.SimpleNamespace(record_route=lambda: 1)
    fake.rtpengine = types.SimpleNamespace(rtpengine_manage=lambda flags: 1,
                                           rtpengine_delete0=lambda: 1)
    fake.sl.sl_reply_error = lambda: fake.replies.append((500, "error")) or 1
    fake.pv.unset = lambda name: fake.pvs.pop(name, None)
    fake.is_method = lambda method: fake.pvs.get("$rm") == method
    fake.pvs.update({"$ci": "vm-1", "$rm": "INVITE"})
    return fake


@pytest.fixture
def rt():
    return FakeRuntime()


def from_gateway(ksr, ani: str, dialed: str = JANE, source=GATEWAY) -> None:
    ksr.pvs.update({"$si": source[0], "$sp": source[1], "$fU": ani, "$rU": dialed})


def counted(app: str) -> float:
    return metrics.VOICEMAIL_CALLS.labels(app)._value.get()


def sent_to_ivr(ksr, app: str, ani: str, account: str = JANE) -> None:
    """The INVITE was relayed to an IVR worker running `app` for `account`'s mailbox."""
    assert (ksr.pvs[AVP_IVR_APP], ksr.pvs[AVP_IVR_ANI], ksr.pvs[AVP_IVR_ACCOUNT]) == (
        app, ani, account)
    assert re.fullmatch(rf"sip:{account}@127\.0\.0\.1:508[01]", ksr.pvs["$ru"])
    assert ksr.tm.relayed == 1 and ksr.replies == []


def nothing_relayed(ksr) -> None:
    assert AVP_IVR_APP not in ksr.pvs and ksr.tm.relayed == 0 and ksr.replies == []


# --- the owner's own mobile reaches the mailbox ----------------------------------------------

def test_the_owner_calling_her_number_from_her_mobile_reaches_her_mailbox(ksr, rt):
    from_gateway(ksr, MOBILE)
    before = counted(voicemail.ACCESS_APP)
    assert voicemail.mailbox_by_ani(rt) == EXIT
    sent_to_ivr(ksr, "vm-access", MOBILE)
    assert counted(voicemail.ACCESS_APP) == before + 1
    # billed as a call in to the DID
    assert {name: callvars.get(name) for name in ("leg", "payer", "customer", "cli",
                                                  "cld", "access_code")} == {
        "leg": LEG_IN, "payer": JANE, "customer": "3", "cli": MOBILE, "cld": JANE,
        "access_code": "IN"}


@pytest.mark.parametrize("ani", [MARKS_MOBILE,   # the mobile of another account
                                 STRANGER,       # no alias at all
                                 "anonymous",    # not a number (its alias is Jane's)
                                 ""])
def test_any_other_caller_is_left_to_the_next_steps(ksr, rt, ani):
    from_gateway(ksr, ani)
    assert voicemail.mailbox_by_ani(rt) is None
    nothing_relayed(ksr)


@pytest.mark.parametrize("source", [("127.0.0.1", 5071), ("10.0.0.5", 5070)])
def test_the_owners_mobile_counts_only_from_the_gateway(ksr, rt, source):
    from_gateway(ksr, MOBILE, source=source)
    assert voicemail.mailbox_by_ani(rt) is None
    nothing_relayed(ksr)


def test_a_call_to_a_number_that_is_no_account_is_not_a_mailbox(ksr, rt):
    from_gateway(ksr, MOBILE, dialed="42099999999")
    assert voicemail.mailbox_by_ani(rt) is None
    nothing_relayed(ksr)


def test_star_98_from_a_phone_of_the_account_is_its_own_mailbox(ksr, rt):
    jane = rt.directory.account(JANE)
    assert voicemail.service_code(rt, jane, "*9") is None
    nothing_relayed(ksr)
    assert voicemail.service_code(rt, jane, "*98") == EXIT
    sent_to_ivr(ksr, "vm-phone", JANE)  # the IVR trusts the phone: no password


# --- message waiting --------------------------------------------------------------------------

def notify_from_ivr(ksr, rt, app: str = "mwi", account: str = JANE) -> None:
    ksr.pvs["$rm"] = "NOTIFY"
    ksr.flags.add(FLT_FROM_IVR)
    rt.req.internal = Internal(account=account, dest="", session="mwi-1", app=app)


def test_the_ivrs_signed_notify_is_forked_to_the_accounts_phones(ksr, rt):
    notify_from_ivr(ksr, rt)
    ksr.registered.add(JANE)
    before = metrics.MWI._value.get()
    assert voicemail.message_waiting(rt) == EXIT
    assert ksr.pvs["$rU"] == JANE and ksr.lookups == [JANE]
    assert ksr.tm.relayed == 1 and ksr.replies == []
    assert metrics.MWI._value.get() == before + 1


@pytest.mark.parametrize("signed", [None,  # FLT_FROM_IVR without signed values
                                    Internal(account=JANE, dest="", session="s",
                                             app="vm-access"),
                                    Internal(account=JANE, dest="", session="s"),
                                    Internal(account="42099999999", dest="", session="s",
                                             app="mwi")])
def test_a_notify_from_the_ivr_not_signed_for_mwi_of_an_account_is_refused(ksr, rt, signed):
    notify_from_ivr(ksr, rt)
    rt.req.internal = signed
    ksr.registered.add(JANE)
    assert voicemail.message_waiting(rt) == EXIT
    assert ksr.replies == [(403, "Forbidden")]
    assert ksr.tm.relayed == 0 and ksr.lookups == []


def test_a_notify_for_an_account_with_no_phone_registered_gets_404(ksr, rt):
    notify_from_ivr(ksr, rt)
    assert voicemail.message_waiting(rt) == EXIT
    assert ksr.replies == [(404, "Not Registered")] and ksr.tm.relayed == 0


def test_a_notify_that_cannot_be_relayed_gets_an_error_reply(ksr, rt):
    notify_from_ivr(ksr, rt)
    ksr.registered.add(JANE)
    ksr.tm.relay_result = -1
    assert voicemail.message_waiting(rt) == EXIT
    assert ksr.replies == [(500, "error")]


def test_an_invite_from_the_ivr_is_no_notify(ksr, rt):
    notify_from_ivr(ksr, rt)
    ksr.pvs["$rm"] = "INVITE"
    assert voicemail.message_waiting(rt) is None
    assert ksr.replies == [] and ksr.lookups == []


def test_a_notify_not_from_the_ivr_is_left_to_the_next_steps(ksr, rt):
    # unsigned (or not from the IVR's address): entry.internal_headers set no flag, and
    # entry.only_invite refuses it next
    ksr.pvs["$rm"] = "NOTIFY"
    assert voicemail.message_waiting(rt) is None
    assert ksr.replies == [] and ksr.lookups == []


# --- a call in to an account whose answering mode ends in voicemail ---------------------------

def inbound() -> Decision:
    return Decision(200, "Inbound", "onnet", payer=JANE, customer_id=3)


def test_mode_voicemail_goes_straight_to_the_ivr_without_ringing(ksr, rt):
    rt.directory.accounts[JANE]["answering_mode"] = "voicemail"
    ksr.registered.add(JANE)
    from_gateway(ksr, STRANGER)
    before = counted(voicemail.DEPOSIT_APP)
    assert voicemail.to_registered(rt, rt.directory.account(JANE), inbound(), LEG_IN) == EXIT
    sent_to_ivr(ksr, "vm-deposit", STRANGER)
    assert ksr.lookups == [] and AVP_VM_ACCOUNT not in ksr.pvs
    assert counted(voicemail.DEPOSIT_APP) == before + 1
    assert callvars.get("cli") == STRANGER and callvars.get("access_code") == "IN"


def test_an_anonymous_caller_reaches_voicemail_without_an_ani(ksr, rt):
    rt.directory.accounts[JANE]["answering_mode"] = "voicemail"
    from_gateway(ksr, "anonymous")
    assert voicemail.to_registered(rt, rt.directory.account(JANE), inbound(), LEG_IN) == EXIT
    sent_to_ivr(ksr, "vm-deposit", "")


def test_ring_then_voicemail_rings_the_phones_for_ring_s_first(ksr, rt):
    ksr.registered.add(JANE)
    from_gateway(ksr, STRANGER)
    assert voicemail.to_registered(rt, rt.directory.account(JANE), inbound(), LEG_IN) is None
    assert ksr.pvs[AVP_VM_ACCOUNT] == JANE
    assert ksr.tm.fr == [(0, voicemail.RING_S * 1000)]
    nothing_relayed(ksr)


def test_ring_then_voicemail_rings_the_phones_through_calls_to_registered(ksr, rt):
    ksr.registered.add(JANE)
    from_gateway(ksr, STRANGER)
    assert calls.to_registered(rt, rt.directory.account(JANE), inbound(), LEG_IN) == EXIT
    assert ksr.tm.relayed == 1 and AVP_IVR_APP not in ksr.pvs
    assert ksr.tm.fr == [(0, voicemail.RING_S * 1000)] and ksr.pvs[AVP_VM_ACCOUNT] == JANE


def test_ring_then_voicemail_without_a_phone_registered_is_voicemail_at_once(ksr, rt):
    from_gateway(ksr, STRANGER)
    assert voicemail.to_registered(rt, rt.directory.account(JANE), inbound(), LEG_IN) == EXIT
    assert ksr.lookups == [JANE]
    sent_to_ivr(ksr, "vm-deposit", STRANGER)
    assert AVP_VM_ACCOUNT not in ksr.pvs


@pytest.mark.parametrize("mode", ["ring", None])
def test_an_account_without_voicemail_just_rings(ksr, rt, mode):
    rt.directory.accounts[JANE]["answering_mode"] = mode
    from_gateway(ksr, STRANGER)
    assert voicemail.to_registered(rt, rt.directory.account(JANE), inbound(), LEG_IN) is None
    assert ksr.lookups == [] and ksr.tm.fr == [] and AVP_VM_ACCOUNT not in ksr.pvs
    nothing_relayed(ksr)


# --- the failure route ------------------------------------------------------------------------

def unanswered(ksr, code: int) -> None:
    """Jane's phones rang for a call in from STRANGER and ended with `code`."""
    ksr.pvs.update({AVP_VM_ACCOUNT: JANE, "$T_reply_code": code,
                    dlg_var("leg"): LEG_IN, dlg_var("payer"): JANE, dlg_var("customer"): "3",
                    dlg_var("cli"): STRANGER, dlg_var("cld"): JANE,
                    dlg_var("access_code"): "IN", dlg_var("setup_ts"): f"{time.time():.3f}"})


@pytest.mark.parametrize("code", [408, 480, 486, 487, 600, 603])
def test_a_call_nobody_answered_goes_to_voicemail(ksr, rt, code):
    unanswered(ksr, code)
    assert voicemail.on_failure(rt) is True
    sent_to_ivr(ksr, "vm-deposit", STRANGER)
    assert AVP_VM_ACCOUNT not in ksr.pvs and AVP_FM_ACCOUNT not in ksr.pvs
    assert ksr.timeouts == [rt.settings.max_call_duration]
    assert rt.emitter.events == []


@pytest.mark.parametrize("code", [403, 404, 488, 500, 503])
def test_a_call_that_failed_otherwise_is_not_voicemails(ksr, rt, code):
    unanswered(ksr, code)
    assert voicemail.on_failure(rt) is False
    nothing_relayed(ksr)
    assert ksr.pvs[AVP_VM_ACCOUNT] == JANE


def test_a_call_the_caller_cancelled_never_goes_to_voicemail(ksr, rt):
    unanswered(ksr, 487)
    ksr.tm.canceled = True
    assert voicemail.on_failure(rt) is False
    nothing_relayed(ksr)


def test_a_call_not_marked_for_voicemail_is_not_voicemails(ksr, rt):
    unanswered(ksr, 480)
    del ksr.pvs[AVP_VM_ACCOUNT]
    assert voicemail.on_failure(rt) is False
    nothing_relayed(ksr)


def test_an_account_that_dropped_voicemail_while_ringing_is_not_sent_there(ksr, rt):
    unanswered(ksr, 480)
    rt.directory.accounts[JANE]["answering_mode"] = "ring"
    assert voicemail.on_failure(rt) is False
    nothing_relayed(ksr)


def test_an_unanswered_follow_me_number_gets_its_failed_xdr_then_voicemail_bills_the_call_in(
        ksr, rt):
    setup = f"{time.time() - 25:.3f}"
    ksr.pvs.update({"$T_reply_code": 408, "$T_reply_reason": "Request Timeout"})
    for name, value in {"leg": "out", "payer": JANE, "customer": "3", "session": "vm-1",
                        "cli": JANE, "cld": FOLLOW_ME, "access_code": "", "setup_ts": setup,
                        "reserved": "0.50", "max_duration": "600", "forwarded": "1",
                        "in_leg": LEG_IN, "in_payer": JANE, "in_customer": "3",
                        "in_cli": STRANGER, "in_access_code": "IN"}.items():
        ksr.pvs[dlg_var(name)] = value
    assert voicemail.on_failure(rt, JANE) is True
    [failed] = rt.emitter.events
    assert (failed.leg, failed.account, failed.cld, failed.sip_code, failed.connect_ts) == (
        "out", JANE, FOLLOW_ME, 408, 0)
    # stored one variable per field (a call set up before an upgrade), read and rewritten
    assert {name: callvars.get(name) for name in (
        "leg", "payer", "cli", "cld", "access_code", "reserved", "max_duration",
        "forwarded")} == {"leg": LEG_IN, "payer": JANE, "cli": STRANGER, "cld": JANE,
                          "access_code": "IN", "reserved": "", "max_duration": "",
                          "forwarded": ""}
    sent_to_ivr(ksr, "vm-deposit", STRANGER)
