"""The follow-me branch route with a fake KSR (never proof that routing works: that is
tests/e2e/test_follow_me.py): only a branch to the PSTN gateway presents the DID."""
import types

import pytest

from tests.unit import fake_ksr

fake_ksr.install()
from kemi import forwarding  # noqa: E402
from kemi.constants import AVP_FM_ACCOUNT  # noqa: E402

GATEWAY = "127.0.0.1:5070"
DID = "42027777100"

pytestmark = pytest.mark.unit


@pytest.fixture
def branch():
    ksr = fake_ksr.install()
    ksr.pvs[AVP_FM_ACCOUNT] = DID
    settings = types.SimpleNamespace(pstn_gateway=GATEWAY, sip_domain="tollgate.example")
    return ksr, types.SimpleNamespace(settings=settings)


@pytest.mark.parametrize("ruri", [f"sip:42073723123@{GATEWAY}",
                                  f"sip:42073723123@{GATEWAY};transport=udp"])
def test_a_branch_to_the_gateway_presents_the_did_and_where_it_was_forwarded_from(branch,
                                                                                  ruri):
    ksr, rt = branch
    ksr.pvs["$ru"] = ruri
    assert forwarding.dress_branch(rt) == 1
    assert ksr.appended == [
        f"P-Asserted-Identity: <sip:{DID}@tollgate.example>\r\n",
        f"Diversion: <sip:{DID}@tollgate.example>;reason=unconditional\r\n"]
    assert "P-Asserted-Identity" in ksr.removed  # no identity from outside goes on


@pytest.mark.parametrize("ruri", [f"sip:{DID}@127.0.0.1:5061;ob",
                                  "sip:42073723123@127.0.0.1:50701",  # a port that starts alike
                                  "sip:42073723123@127.0.0.1"])
def test_a_branch_to_one_of_the_dids_own_phones_keeps_the_callers_identity(branch, ruri):
    ksr, rt = branch
    ksr.pvs["$ru"] = ruri
    assert forwarding.dress_branch(rt) == 1
    assert ksr.appended == [] and ksr.removed == []
