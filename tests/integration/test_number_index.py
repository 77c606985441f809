"""The account and access-number indexes against a real Redis: a PSTN number costs no
round trip, a new account or access number is known from its message, a lost message
makes the index be read again."""
from __future__ import annotations

import time

import msgpack
import pytest

from provisioning.loader import Changes, publish
from tollgate import keyspace, numbers
from tollgate.directory import Directory

pytestmark = pytest.mark.integration


def gets(client) -> int:
    """GET commands Redis has run so far."""
    return int(client.info("commandstats").get("cmdstat_get", {}).get("calls", 0))


def indexed(client, **cache) -> Directory:
    indexes = {p: numbers.KeyIndex(p) for p in (numbers.ACCOUNTS, numbers.ACCESS_NUMBERS)}
    for index in indexes.values():
        index.load(client)
    directory = Directory(client, indexes=indexes)
    if cache:
        directory.cache = type(directory.cache)(client, **cache)
        directory.cache.watch = tuple(p.encode() for p in (keyspace.rates(""), *indexes))
    directory.poll()
    return directory


def poll_until(directory: Directory, done, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, "the change never reached the directory"
        directory.poll()
        time.sleep(0.005)


def test_a_pstn_number_is_no_account_without_asking_redis(redis_client):
    redis_client.set(keyspace.account("17785551209"), msgpack.packb({"id": "17785551209"}))
    directory = indexed(redis_client)
    before = gets(redis_client)
    for n in range(50):
        assert directory.dialed_account(f"4420712{n:05d}") is None
        assert directory.access_number(f"4420712{n:05d}") is None
    assert gets(redis_client) == before
    assert directory.dialed_account("17785551209") == {"id": "17785551209"}
    assert gets(redis_client) == before + 1


def test_a_new_account_and_access_number_are_known_from_their_messages(redis_client):
    directory = indexed(redis_client)
    assert directory.dialed_account("17785551300") is None
    changes = Changes()
    changes.set(keyspace.account("17785551300"), msgpack.packb({"id": "17785551300"}))
    changes.set(keyspace.access_number("18005550100"), msgpack.packb({"app_id": 4}))
    changes.set(keyspace.app(4), msgpack.packb({"id": 4, "type": "prepaid"}))
    publish(redis_client, changes)
    poll_until(directory, lambda: directory.dialed_account("17785551300") is not None)
    assert directory.access_number("18005550100") == {"id": 4, "type": "prepaid"}


def test_a_lost_message_makes_the_index_be_read_again(redis_client):
    directory = indexed(redis_client, gen_check_interval=0)
    loads = directory.indexes[numbers.ACCOUNTS].loads
    redis_client.set(keyspace.account("17785551400"), msgpack.packb({"id": "17785551400"}))
    redis_client.incr(keyspace.GENERATION)  # written without its message
    poll_until(directory, lambda: directory.indexes[numbers.ACCOUNTS].loads > loads)
    assert directory.dialed_account("17785551400") == {"id": "17785551400"}


def test_without_an_index_every_number_is_looked_up(redis_client):
    directory = Directory(redis_client)
    directory.poll()  # connected (it reads the generation)
    before = gets(redis_client)
    assert directory.dialed_account("442071234567") is None
    assert gets(redis_client) == before + 1
