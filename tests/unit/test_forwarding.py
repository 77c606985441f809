"""Follow-me rules (billing/forwarding.py) and how provisioning stores a follow-me list
(provisioning/validate.py follow_me): pure, no servers."""
from __future__ import annotations

from decimal import Decimal

import pytest

from billing import forwarding
from billing.classify import Decision
from billing.forwarding import Target
from provisioning import validate
from provisioning.validate import BadInput

pytestmark = pytest.mark.unit


def test_a_forwarding_account_rings_its_numbers_in_order_each_for_its_timeout():
    account = {"answering_mode": "forward_then_voicemail",
               "follow_me": ["42073723123/25", "+420777000111", "not a number"]}
    assert forwarding.targets(account) == [Target("42073723123", 25),
                                           Target("420777000111", forwarding.DEFAULT_RING_S)]


@pytest.mark.parametrize("mode", ["ring", "ring_then_voicemail", "voicemail", None])
def test_an_account_that_does_not_forward_has_no_targets(mode):
    assert forwarding.targets({"answering_mode": mode, "follow_me": ["42073723123/25"]}) == []


def test_a_stored_ring_timeout_out_of_bounds_is_held_to_them():
    assert forwarding.parse_entry("1/1") == Target("1", forwarding.MIN_RING_S)
    assert forwarding.parse_entry("1/999") == Target("1", forwarding.MAX_RING_S)


def test_diversion_headers_name_the_numbers_a_call_was_forwarded_from():
    header = ('<sip:42027777100@tollgate.example>;reason=unconditional, '
              '"Office" <tel:+42027777200>;reason=no-answer')
    assert forwarding.diverted_from(header) == {"42027777100", "42027777200"}
    assert forwarding.diverted_from("") == set()
    assert forwarding.diverted_from("<sip:anonymous@x>\r\nX-Evil: 1") == set()


def test_a_number_of_the_platform_or_one_already_forwarded_from_loops():
    on_net = {"42027777100"}.__contains__
    assert forwarding.loops("42027777100", on_net, set())
    assert forwarding.loops("42073723123", on_net, {"42073723123"})
    assert not forwarding.loops("42073723123", on_net, {"42027777100"})


def test_provisioning_stores_each_number_with_its_ring_timeout():
    assert validate.follow_me("+42073723123/25, 420777000111") == [
        "+42073723123/25", "420777000111/20"]
    assert validate.follow_me([{"number": "42073723123", "timeout": 30}, "1/5"]) == [
        "42073723123/30", "1/5"]
    assert validate.follow_me("") == []


@pytest.mark.parametrize("bad, said", [
    ("42073723123/4", "ring timeout '4' is not 5-300 seconds"),
    ("42073723123/301", "ring timeout '301' is not 5-300 seconds"),
    ("42073723123/x", "ring timeout 'x'"),
    ("4207 3723", "digits with an optional leading +"),
    ([{"number": "1", "ring": 5}], "{number: ..., timeout: seconds} expected"),
    ([{"number": "1", "timeout": True}], "ring timeout True"),
    (",".join(str(n) for n in range(11)), "at most 10 numbers"),
])
def test_a_bad_follow_me_entry_is_refused_with_what_is_wrong(bad, said):
    with pytest.raises(BadInput, match=None) as refused:
        validate.follow_me(bad)
    assert said in str(refused.value)


def test_only_simultaneous_follow_me_rings_together():
    assert forwarding.rings_together({"follow_me_order": "simultaneous"})
    assert not forwarding.rings_together({"follow_me_order": "sequential"})
    assert not forwarding.rings_together({})


def test_numbers_ringing_together_hold_the_most_and_last_the_least():
    cheap = Decision(200, "Paid", "pstn", payer="d", paid=True, max_duration=3600,
                     reserve=Decimal("1.20"))
    dear = Decision(200, "Paid", "pstn", payer="d", paid=True, max_duration=600,
                    reserve=Decimal("6.00"))
    free = Decision(200, "Free", "pstn", payer="d")
    target, decision = forwarding.together([(forwarding.Target("1212", 20), cheap),
                                       (forwarding.Target("4420", 45), dear),
                                       (forwarding.Target("1800", 5), free)])
    assert target == forwarding.Target("1212", 45)  # rings for the longest timeout
    assert (decision.reserve, decision.max_duration) == (Decimal("6.00"), 600)
