"""The media steps: an offer or answer rtpengine does not take is logged and counted."""
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
