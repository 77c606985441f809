"""External call slots of a client in a real Redis (billing/slots.lua via tollgate.slots)."""
from __future__ import annotations

import pytest

from tollgate import keyspace
from tollgate.slots import Slots

pytestmark = pytest.mark.integration


def test_the_n_plus_first_call_is_refused_and_a_freed_slot_is_taken_again(redis_client):
    slots = Slots(redis_client)
    assert slots.take(7, "a", 2, 60) and slots.take(7, "b", 2, 60)
    assert not slots.take(7, "c", 2, 60)
    assert slots.take(7, "a", 2, 60)  # a retransmitted INVITE keeps its own slot
    assert slots.busy(7) == 2
    slots.give_back(7, "a")
    assert slots.take(7, "c", 2, 60)
    assert slots.take(8, "x", 0, 60)  # 0: no limit, never refused


def test_unlimited_clients_still_count_and_other_clients_do_not_share(redis_client):
    slots = Slots(redis_client)
    for n in range(5):
        assert slots.take(1, f"call-{n}", 0, 60)
    assert slots.take(2, "other", 1, 60)
    assert slots.busy(1) == 5 and slots.busy(2) == 1


def test_a_crashed_nodes_slots_expire(redis_client):
    slots = Slots(redis_client)
    assert slots.take(7, "lost", 1, 60)
    # the node died: its entry's expiry passes (set it in the past, as time would)
    redis_client.hset(keyspace.call_slots(7), "lost", 1)
    assert slots.take(7, "new", 1, 60)
    assert redis_client.hkeys(keyspace.call_slots(7)) == [b"new"]
    assert 0 < redis_client.pttl(keyspace.call_slots(7)) <= (60 + 120) * 1000
