"""The media steps: an offer or answer rtpengine does not take is logged and counted."""
import time
import types

import pytest

from tests.unit import fake_ksr

fake_ksr.install()
from kemi import calls  # noqa: E402
from tollgate import metrics  # noqa: E402


@pytest.fixture
def rtpengine():
    """rtpengine_manage answering `result`; the flags it was given are kept."""
    ksr = fake_ksr.install()
    seen = []

    def manage(flags):
        seen.append(flags)
        return manage.result
    manage.result = 1
    ksr.rtpengine = types.SimpleNamespace(rtpengine_manage=manage)
    ksr.pvs["$ci"] = "media-1"
    return ksr, manage, seen


def failures(side: str) -> float:
    return metrics.MEDIA_FAILURES.labels(side)._value.get()


def test_an_answer_rtpengine_takes_is_silent(rtpengine):
    ksr, manage, seen = rtpengine
    before = failures("answer")
    calls.anchor_answer(200)
    assert seen == [calls.MEDIA_FLAGS]
    assert failures("answer") == before
    assert not ksr.logs


def test_an_answer_rtpengine_refuses_is_logged_with_the_call_and_counted(rtpengine):
    ksr, manage, seen = rtpengine
    manage.result = -1
    before = failures("answer")
    calls.anchor_answer(200)
    assert failures("answer") == before + 1
    assert ksr.logs and "[media-1] MEDIA: rtpengine refused the answer in a 200 reply" \
        in ksr.logs[0]


def test_an_offer_rtpengine_refuses_fails_the_step_and_is_counted(rtpengine):
    ksr, manage, seen = rtpengine
    manage.result = -1
    ksr.pvs["$rb"] = "v=0\r\nm=audio 4000 RTP/AVP 0\r\n"
    before = failures("offer")
    assert calls.anchor_media() is False
    assert failures("offer") == before + 1


def test_a_late_offer_is_not_a_failure(rtpengine):
    ksr, manage, seen = rtpengine
    manage.result = -1
    ksr.pvs["$rb"] = ""
    before = failures("offer")
    assert calls.anchor_media() is True
    assert failures("offer") == before


@pytest.fixture
def resent(rtpengine):
    """A 200 to an INVITE that matched no transaction; the dialog module knows the dialog
    (answered 10 s ago, no ACK yet) unless a test says otherwise."""
    ksr, manage, seen = rtpengine
    dialogs = {("media-1", "caller-tag", "gw-tag")}
    found = []

    def dlg_get(call_id, from_tag, to_tag):
        found.append((call_id, from_tag, to_tag))
        return 1 if (call_id, from_tag, to_tag) in dialogs else -1
    ksr.dialog = types.SimpleNamespace(dlg_get=dlg_get)
    ksr.pvs.update({"$rs": 200, "$rm": "INVITE", "$ft": "caller-tag", "$tt": "gw-tag",
                    "$dlg(state)": 3, "$rb": "v=0\r\nm=audio 4000 RTP/AVP 0\r\n",
                    "$dlg_var(ctx)": "payer=1001&leg=out&caller_ip=192.0.2.7",
                    "$mb": ANSWER.format(caller="192.0.2.10:5060;received=192.0.2.7;rport=41234"),
                    "$dlg_var(connect_ts)": f"{time.time() - 10:.3f}",
                    "$dlg(to_contact)": "sip:gw@198.51.100.4:5060;transport=udp",
                    "$si": "198.51.100.4"})
    return ksr, seen, found


ANSWER = ("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKour\r\n"
          "v: SIP/2.0/UDP {caller};branch=z9hG4bKcaller\r\nCall-ID: media-1\r\n"
          "CSeq: 2 INVITE\r\nContent-Length: 0\r\n\r\n")


def late_answers() -> float:
    return metrics.LATE_ANSWERS._value.get()


def test_a_2xx_resent_after_the_transaction_went_reaches_the_caller_through_rtpengine(resent):
    ksr, seen, found = resent
    before = late_answers()
    assert calls.late_answer(None) is True
    assert found == [("media-1", "caller-tag", "gw-tag")]
    assert seen == [calls.MEDIA_FLAGS]  # its SDP is the relay's, as the first 2xx's was
    assert late_answers() == before + 1


@pytest.mark.parametrize("change", [
    {"$rs": 180}, {"$rs": 486}, {"$rm": "BYE"}, {"$tt": ""}, {"$tt": "forged-tag"},
    {"$dlg(state)": 2}, {"$dlg(state)": 5}, {"$dlg_var(connect_ts)": ""},
    {"$dlg_var(connect_ts)": f"{time.time() - 40:.3f}"},
    # a party to the call aiming the 2xx elsewhere: another host, or no Via under ours
    {"$mb": ANSWER.format(caller="203.0.113.9:5060;rport")},
    {"$mb": ANSWER.format(caller="192.0.2.7:5060;received=203.0.113.9")},
    {"$mb": "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKour\r\n\r\n"},
    # from anywhere but the callee: its SDP would move the callee side of the relay
    {"$si": "192.0.2.7"}, {"$si": "198.51.100.40"}, {"$dlg(to_contact)": ""}])
def test_any_other_reply_without_a_transaction_stays_stray(resent, change):
    ksr, seen, found = resent
    ksr.pvs.update(change)
    before = late_answers()
    assert calls.late_answer(None) is False
    assert seen == [] and late_answers() == before


@pytest.mark.parametrize("uri, host", [
    ("sip:gw@198.51.100.4:5060;transport=udp", "198.51.100.4"),
    ("<sip:GW.Example.com;lr>", "gw.example.com"),
    ("sips:alice:secret@[2001:DB8::1]:5061", "2001:db8::1"),
    ("sip:198.51.100.4?subject=x", "198.51.100.4"),
    ("", ""), ("not a uri", ""), ("sip:", "")])
def test_uri_host_names_the_host_of_a_sip_uri(uri, host):
    from kemi import message
    assert message.uri_host(uri) == host


@pytest.mark.parametrize("text, hosts", [
    ("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=a\r\n"
     "via: SIP/2.0/TCP host.example;received=10.0.0.2 , SIP/2.0/UDP [2001:db8::1]:5070\r\n"
     "V : sip/2.0/udp 10.0.0.3;rport=5;RECEIVED=[2001:db8::9]\r\n\r\nv: SIP/2.0/UDP 9.9.9.9",
     ["10.0.0.1", "10.0.0.2", "2001:db8::1", "2001:db8::9"]),
    ("SIP/2.0 200 OK\r\nVia-Extra: SIP/2.0/UDP 10.0.0.1\r\nVia: garbage\r\n\r\n", []),
])
def test_via_hosts_reads_each_via_and_its_received_address(text, hosts):
    from kemi import message
    assert message.via_hosts(text) == hosts
