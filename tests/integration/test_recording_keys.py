"""The recording-keys listener on a real Redis: which reported keys count and when the
recording starts (rtpengine's side is the e2e test's: tests/e2e/test_client_policies.py)."""
from __future__ import annotations

import json

import msgpack
import pytest

from tollgate import config, keyspace
from tollgate.directory import Directory
from tollgate.recording_keys import Listener

pytestmark = pytest.mark.integration

CLIENT = {"id": 41, "features": ["recording"], "recording": True,
          "on_demand_recording": "dtmf", "recording_service_code": "*7"}
SETTINGS = config.Settings(rtpengine_address="192.0.2.1", rtpengine_ng_port=2223,
                           media_relay_sets="blue=192.0.2.9:2224")


@pytest.fixture
def listener(redis_client):
    redis_client.set(keyspace.customer(41), msgpack.packb(CLIENT))
    started: list[tuple[str, str]] = []

    def starter(address: str, call_id: str) -> bool:
        started.append((address, call_id))
        return True
    made = Listener(SETTINGS, redis_client, Directory(redis_client), starter)
    made.started = started  # type: ignore[attr-defined]
    return made


def watch(client, call_id: str, media_set: str = "0") -> None:
    client.hset(keyspace.recording_keys(call_id),
                mapping={"customer": "41", "media_set": media_set, "from_tag": "caller"})


def key(call_id: str, event: int, tag: str = "caller") -> bytes:
    return json.dumps({"callid": call_id, "source_tag": tag, "event": event}).encode()


def test_the_callers_code_starts_the_recording_once(listener, redis_client):
    watch(redis_client, "c1")
    assert listener.handle(key("c1", 5), "192.0.2.1") == "kept"
    assert listener.handle(key("c1", 10), "192.0.2.1") == "kept"
    assert listener.handle(key("c1", 7), "192.0.2.1") == "started"
    assert listener.started == [("192.0.2.1:2223", "c1")]
    assert redis_client.hget(keyspace.recording_keys("c1"), "recorded") == b"1"
    assert listener.handle(key("c1", 7), "192.0.2.1") == "ignored"  # recorded already
    assert len(listener.started) == 1


def test_keys_of_the_far_end_unwatched_calls_and_strangers_do_nothing(listener, redis_client):
    watch(redis_client, "c2")
    for event in (10, 7):
        assert listener.handle(key("c2", event, tag="far-end"), "192.0.2.1") == "ignored"
    assert listener.handle(key("nobody", 10), "192.0.2.1") == "ignored"
    # a datagram from an address that is not the call's rtpengine (forged) counts nothing
    assert listener.handle(key("c2", 10), "192.0.2.2") == "ignored"
    assert listener.handle(b"\x00garbage", "192.0.2.1") == "ignored"
    assert redis_client.hget(keyspace.recording_keys("c2"), "keys") is None
    assert listener.started == []


def test_a_call_in_a_relay_set_is_recorded_by_that_sets_instances(listener, redis_client):
    watch(redis_client, "c3", media_set="1")
    assert listener.handle(key("c3", 10), "192.0.2.1") == "ignored"  # not the set's host
    listener.handle(key("c3", 10), "192.0.2.9")
    assert listener.handle(key("c3", 7), "192.0.2.9") == "started"
    assert listener.started == [("192.0.2.9:2224", "c3")]


def test_only_the_last_keys_are_kept_and_a_client_without_dtmf_recording_is_ignored(
        listener, redis_client):
    watch(redis_client, "c4")
    for event in range(10):
        listener.handle(key("c4", event), "192.0.2.1")
    assert redis_client.hget(keyspace.recording_keys("c4"), "keys") == b"23456789"
    redis_client.set(keyspace.customer(41), msgpack.packb({**CLIENT, "recording": False}))
    fresh = Listener(SETTINGS, redis_client, Directory(redis_client), listener.starter)
    watch(redis_client, "c5")
    fresh.handle(key("c5", 10), "192.0.2.1")
    assert fresh.handle(key("c5", 7), "192.0.2.1") == "ignored"
    assert listener.started == []


def test_no_rtpengine_starting_it_leaves_the_call_unrecorded(redis_client):
    redis_client.set(keyspace.customer(41), msgpack.packb(CLIENT))
    listener = Listener(SETTINGS, redis_client, Directory(redis_client), lambda a, c: False)
    watch(redis_client, "c6")
    listener.handle(key("c6", 10), "192.0.2.1")
    assert listener.handle(key("c6", 7), "192.0.2.1") == "failed"
    assert redis_client.hget(keyspace.recording_keys("c6"), "recorded") is None


def test_an_rtpengine_on_loopback_reports_from_any_loopback_address(redis_client):
    """The kernel sends rtpengine's report to 127.x.y.z from 127.0.0.1: on loopback the
    trust boundary is the host, so any loopback source counts; another host never does."""
    redis_client.set(keyspace.customer(41), msgpack.packb(CLIENT))
    started: list[tuple[str, str]] = []
    settings = config.Settings(rtpengine_address="127.5.6.7", rtpengine_ng_port=2223)

    def starter(address: str, call_id: str) -> bool:
        started.append((address, call_id))
        return True
    listener = Listener(settings, redis_client, Directory(redis_client), starter)
    watch(redis_client, "c5")
    assert listener.handle(key("c5", 10), "192.0.2.1") == "ignored"
    assert listener.handle(key("c5", 10), "127.0.0.1") == "kept"
    assert listener.handle(key("c5", 7), "127.0.0.1") == "started"
    assert started == [("127.5.6.7:2223", "c5")]
