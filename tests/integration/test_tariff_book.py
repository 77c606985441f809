"""Rate tables in memory against a real Redis: read once, kept current prefix by prefix."""
from __future__ import annotations

import os
import time

import msgpack
import pytest
import redis

from provisioning.loader import Changes, publish
from tollgate import keyspace, tariffs
from tollgate.directory import Directory

pytestmark = pytest.mark.integration


def rate(prefix: str, price: str) -> bytes:
    return msgpack.packb({"prefix": prefix, "price_first": price, "price_next": price,
                          "interval_first": 60, "interval_next": 60, "connect_fee": "0",
                          "free_seconds": 0, "forbidden": False})


def fill(client, tariff_id: int, rows: dict[str, str]) -> None:
    client.hset(keyspace.rates(tariff_id), mapping={p: rate(p, v) for p, v in rows.items()})


def poll_until(directory: Directory, done, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, "the change never reached the directory"
        directory.poll()
        time.sleep(0.005)


def price(directory: Directory, tariff_id: int, number: str) -> tuple[str, str] | None:
    found = directory.rate(tariff_id, number)
    return None if found is None else (found["prefix"], found["price_first"])


@pytest.fixture
def directory(redis_client):
    fill(redis_client, 5, {"1": "0.02", "44": "0.05", "4420": "0.04", "447": "0.12"})
    made = Directory(redis_client)
    made.poll()
    assert price(made, 5, "442071234567") == ("4420", "0.04")
    return made


def test_a_changed_prefix_is_read_alone_and_the_rest_stays(directory, redis_client):
    redis_client.set(keyspace.account("1001"), msgpack.packb({"id": "1001"}))
    directory.account("1001")
    changes = Changes()
    changes.hset(keyspace.rates(5), "447", rate("447", "0.10"))
    publish(redis_client, changes)
    poll_until(directory, lambda: price(directory, 5, "447700900123") == ("447", "0.10"))
    assert directory.tariffs.loads == 1 and directory.tariffs.updates == 1
    assert price(directory, 5, "442071234567") == ("4420", "0.04")
    assert directory.cache.flushes == 0 and len(directory.cache) == 1  # the account stays


def test_a_new_longer_prefix_wins_and_a_removed_one_lets_a_shorter_match(directory,
                                                                        redis_client):
    changes = Changes()
    changes.hset(keyspace.rates(5), "44207", rate("44207", "0.01"))
    changes.hremove(keyspace.rates(5), "4420")
    publish(redis_client, changes)
    poll_until(directory, lambda: directory.tariffs.updates == 2)
    assert price(directory, 5, "442071234567") == ("44207", "0.01")
    assert price(directory, 5, "442081234567") == ("44", "0.05")
    assert directory.tariffs.loads == 1


def test_a_tariff_rewritten_as_a_whole_is_read_again(directory, redis_client):
    changes = Changes()
    for n in range(keyspace.FIELD_MESSAGES_MAX + 1):
        changes.hset(keyspace.rates(5), f"9{n:05d}", rate(f"9{n:05d}", "0.30"))
    publish(redis_client, changes)
    poll_until(directory, lambda: 5 not in directory.tariffs.tables)
    assert price(directory, 5, "900042") == ("900042", "0.30")
    assert directory.tariffs.loads == 2 and directory.tariffs.updates == 0


def test_a_lost_message_drops_the_tables_through_the_generation(redis_client):
    fill(redis_client, 6, {"1": "0.02"})
    directory = Directory(redis_client)
    directory.cache = type(directory.cache)(redis_client, gen_check_interval=0)
    directory.cache.watch = (keyspace.rates("").encode(),)
    directory.poll()
    assert price(directory, 6, "12125551234") == ("1", "0.02")
    fill(redis_client, 6, {"1": "0.03"})
    redis_client.incr(keyspace.GENERATION)  # a write whose messages this process missed
    poll_until(directory, lambda: 6 not in directory.tariffs.tables)
    assert price(directory, 6, "12125551234") == ("1", "0.03")


def test_a_preloaded_book_is_shared_by_forked_workers(redis_client):
    fill(redis_client, 7, {str(n): "0.01" for n in range(100, 200)})
    book = tariffs.TariffBook(redis_client)
    assert book.preload() >= 100
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # a worker: rates without reading any table
        try:
            loads = book.loads
            kwargs = redis_client.connection_pool.connection_kwargs
            own = redis.Redis(host=kwargs["host"], port=kwargs["port"])
            worker = Directory(own, tariffs=book)
            worker.poll()
            found = price(worker, 7, "1505550000")
            os.write(write, repr((found, worker.tariffs.loads - loads)).encode())
        except BaseException as exc:  # noqa: BLE001 - told to the parent, which fails
            os.write(write, repr(exc).encode()[:200])
        finally:
            os._exit(0)
    os.close(write)
    told = os.read(read, 200).decode()
    os.waitpid(pid, 0)
    assert told == repr((("150", "0.01"), 0))


def test_a_preloaded_book_that_missed_a_write_starts_over(redis_client):
    fill(redis_client, 8, {"1": "0.02"})
    book = tariffs.TariffBook(redis_client)
    book.preload()
    fill(redis_client, 8, {"1": "0.05"})
    redis_client.incr(keyspace.GENERATION)  # written between the preload and the fork
    directory = Directory(redis_client, tariffs=book)
    directory.poll()
    assert price(directory, 8, "12125551234") == ("1", "0.05")


def test_past_the_overlay_bound_the_table_is_read_again(redis_client, monkeypatch):
    monkeypatch.setattr(tariffs, "OVERLAY_MAX", 2)
    fill(redis_client, 9, {"1": "0.02", "44": "0.05"})
    directory = Directory(redis_client)
    directory.poll()
    assert price(directory, 9, "4420") == ("44", "0.05")
    for n, prefix in enumerate(("441", "442", "443")):
        changes = Changes()
        changes.hset(keyspace.rates(9), prefix, rate(prefix, "0.40"))
        publish(redis_client, changes)
        poll_until(directory, lambda: directory.tariffs.updates == n + 1)
        assert (9 in directory.tariffs.tables) == (n < 2)   # the third change is one too many
    assert price(directory, 9, "4430") == ("443", "0.40") and directory.tariffs.loads == 2
    assert price(directory, 9, "4450") == ("44", "0.05")


def test_a_prefix_longer_than_20_digits_is_routed(redis_client):
    long = "4" * 24
    fill(redis_client, 10, {"44": "0.05", long: "0.90"})
    directory = Directory(redis_client)
    directory.poll()
    assert price(directory, 10, long + "1") == (long, "0.90")
    assert price(directory, 10, long[:-1]) == ("44", "0.05")


def test_a_message_naming_no_prefix_the_loader_writes_drops_the_table(directory,
                                                                    redis_client):
    redis_client.publish(keyspace.INVALIDATE, keyspace.rate_field(5, "44x"))
    poll_until(directory, lambda: 5 not in directory.tariffs.tables)
    assert price(directory, 5, "442071234567") == ("4420", "0.04")
    assert directory.tariffs.loads == 2 and directory.tariffs.updates == 0
