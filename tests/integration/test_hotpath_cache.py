"""RecordCache against a real redis-server: negative caching, pub/sub, tg:gen, outages."""
import importlib
import time

import msgpack
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from hotpath.errors import BackendUnavailable
from tests.servers import RedisServer

pytestmark = pytest.mark.integration


@pytest.fixture(params=["cython", "python"])
def impl(request):
    if request.param == "cython":
        try:
            return importlib.import_module("hotpath._cache")
        except ImportError as e:
            pytest.skip(f"Cython extension hotpath._cache is not built: {e}")
    return importlib.import_module("hotpath._cache_py")


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def client_for(port):
    """What a Kamailio worker should use: short timeouts, no retries (the cache has its own)."""
    return redis.Redis(port=port, socket_timeout=0.5, socket_connect_timeout=0.5,
                       retry=Retry(NoBackoff(), 0))


def poll_until(cache, done, seconds=5.0):
    """Poll like a worker between requests until `done()`; pub/sub delivery is asynchronous."""
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, "invalidation never arrived"
        cache.poll()
        time.sleep(0.005)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def cache(impl, redis_client, redis_server, clock):
    made = impl.RecordCache(lambda: client_for(redis_server.port), size=1000, ttl=30,
                            negative_ttl=5, gen_check_interval=1, clock=clock)
    yield made


def put(client, key, record):
    client.set(key, msgpack.packb(record))


def test_reads_records_written_by_the_loader(cache, redis_client):
    put(redis_client, "tg:account:17785551209", {"id": "17785551209", "blocked": False})
    assert cache.get("tg:account:17785551209") == {"id": "17785551209", "blocked": False}
    assert cache.get(b"tg:account:17785551209") == {"id": "17785551209", "blocked": False}
    assert cache.connected


def test_negative_caching_hides_a_new_key_until_the_negative_ttl(cache, redis_client, clock):
    assert cache.get("tg:alias:1778555#4545") is None
    put(redis_client, "tg:alias:1778555#4545", {"id": "1778555#4545", "account_id": "17785551209"})
    assert cache.get("tg:alias:1778555#4545") is None
    assert cache.negative_hits == 1
    clock.now += 5
    assert cache.get("tg:alias:1778555#4545")["account_id"] == "17785551209"


def test_published_key_is_invalidated_on_poll(cache, redis_client):
    put(redis_client, "tg:account:1", {"v": 1})
    put(redis_client, "tg:account:2", {"v": 1})
    cache.get("tg:account:1")
    cache.get("tg:account:2")
    put(redis_client, "tg:account:1", {"v": 2})
    redis_client.publish("tg:invalidate", "tg:account:1")
    poll_until(cache, lambda: cache.invalidations == 1)
    assert cache.get("tg:account:1") == {"v": 2}
    assert len(cache) == 2 and cache.misses == 3


def test_published_star_flushes_everything(cache, redis_client):
    for i in range(5):
        cache.get(f"tg:account:{i}")
    redis_client.publish("tg:invalidate", "*")
    poll_until(cache, lambda: len(cache) == 0)


def test_poll_with_nothing_pending_changes_nothing(cache, redis_client):
    put(redis_client, "tg:account:1", {"v": 1})
    cache.get("tg:account:1")
    for _ in range(100):
        assert cache.poll() == 0
    assert len(cache) == 1 and cache.errors == 0


def test_generation_moved_without_its_messages_flushes_one_interval_later(cache, redis_client,
                                                                          clock):
    redis_client.set("tg:gen", 41)
    cache.get("tg:account:1")
    redis_client.incr("tg:gen")  # a write whose messages never came (lost while away)
    cache.poll()
    assert len(cache) == 1
    clock.now += 1
    cache.poll()  # Redis is ahead: its messages may still be on the way
    assert len(cache) == 1
    clock.now += 1
    cache.poll()
    assert len(cache) == 0 and cache.flushes == 1


def test_a_write_announced_in_full_drops_only_its_keys(cache, redis_client, clock):
    from provisioning.loader import Changes, publish
    redis_client.set("tg:gen", 7)
    for i in (1, 2):
        put(redis_client, f"tg:account:{i}", {"v": 1})
        cache.get(f"tg:account:{i}")
    changes = Changes()
    changes.set("tg:account:1", msgpack.packb({"v": 2}))
    publish(redis_client, changes)
    poll_until(cache, lambda: cache.invalidations == 1)
    for _ in range(3):  # generation checks: the messages said generation 8 in full
        clock.now += 1
        cache.poll()
    assert cache.flushes == 0 and len(cache) == 1
    assert cache.get("tg:account:1") == {"v": 2}


def test_watched_keys_reach_the_owner(cache, redis_client):
    cache.watch = (b"tg:rates:",)
    cache.connect()
    redis_client.publish("tg:invalidate", "tg:rates:3#44")
    redis_client.publish("tg:invalidate", "tg:account:9")
    poll_until(cache, lambda: cache.watched)
    assert cache.watched == [b"tg:rates:3#44"]


def test_redis_generation_going_back_flushes_at_once(cache, redis_client, clock):
    redis_client.set("tg:gen", 41)
    cache.get("tg:account:1")
    redis_client.set("tg:gen", 0)  # Redis restarted without its data
    clock.now += 1
    cache.poll()
    assert len(cache) == 0 and cache.flushes == 1


def test_connection_is_lazy(impl, redis_server):
    made = []

    def factory():
        made.append(1)
        return client_for(redis_server.port)

    cache = impl.RecordCache(factory, size=10)
    assert made == []
    assert cache.connect() is True and made == [1]


def test_stopped_redis_serves_stale_then_recovers(impl, clock):
    server = RedisServer().start()
    try:
        admin = client_for(server.port)
        put(admin, "tg:account:17785551209", {"id": "17785551209"})
        cache = impl.RecordCache(lambda: client_for(server.port), size=100, ttl=30, negative_ttl=5,
                                 retry_interval=1, clock=clock)
        assert cache.get("tg:account:17785551209") == {"id": "17785551209"}
        server.stop()

        clock.now += 31
        assert cache.get("tg:account:17785551209") == {"id": "17785551209"}
        assert cache.stale_served == 1 and cache.errors >= 1
        with pytest.raises(BackendUnavailable):
            cache.get("tg:account:17785551210")
        assert cache.poll() == 0

        server.start()  # same port, empty data: Redis restarted without persistence
        put(admin, "tg:account:17785551209", {"id": "17785551209", "blocked": True})
        clock.now += 1
        assert cache.get("tg:account:17785551209") == {"id": "17785551209", "blocked": True}
        assert cache.connected
        redis_client = client_for(server.port)
        put(redis_client, "tg:account:17785551209", {"id": "17785551209", "blocked": False})
        redis_client.publish("tg:invalidate", "tg:account:17785551209")
        poll_until(cache, lambda: len(cache) == 0)
    finally:
        server.stop()


def test_unknown_key_while_redis_is_down_raises(impl, clock):
    server = RedisServer().start()
    port = server.port
    server.stop()
    cache = impl.RecordCache(lambda: client_for(port), size=10, clock=clock)
    assert cache.connect() is False
    with pytest.raises(BackendUnavailable):
        cache.get("tg:account:1")
