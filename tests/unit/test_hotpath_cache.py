"""RecordCache logic (TTL, eviction, stale serving, invalidation) on a tiny in-memory fake.

Redis behaviour itself (pub/sub, tg:gen, a stopped server) is in
tests/integration/test_hotpath_cache.py against a real redis-server.
"""
import importlib

import msgpack
import pytest
import redis

from hotpath.errors import BackendUnavailable

pytestmark = pytest.mark.unit


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


class FakePubSub:
    connection = None  # no socket: the cache reads get_message() on every poll()

    def __init__(self, redis):
        self.redis = redis

    def subscribe(self, channel):
        self.redis.check()

    def get_message(self, timeout=0.0):
        self.redis.check()
        return self.redis.messages.pop(0) if self.redis.messages else None

    def close(self):
        pass


class FakeRedis:
    """Just GET and a message queue, with a switch that makes every call fail."""

    def __init__(self):
        self.data, self.messages, self.gets, self.down = {}, [], [], False

    def check(self):
        if self.down:
            raise redis.ConnectionError("fake Redis is down")

    def get(self, key):
        self.check()
        self.gets.append(key)
        return self.data.get(key)

    def pubsub(self):
        return FakePubSub(self)

    def put(self, key, record):
        self.data[key] = msgpack.packb(record)

    def publish(self, key):
        self.messages.append({"type": "message", "channel": b"tg:invalidate", "data": key})


@pytest.fixture
def fake():
    return FakeRedis()


@pytest.fixture
def clock():
    return Clock()


def make(impl, fake, clock, **kw):
    kw.setdefault("size", 100)
    return impl.RecordCache(fake, ttl=30, negative_ttl=5, clock=clock, **kw)


def test_hit_after_miss_returns_the_decoded_record(impl, fake, clock):
    fake.put(b"tg:account:17785551209", {"id": "17785551209", "follow_me": ["42073723123"]})
    cache = make(impl, fake, clock)
    first = cache.get(b"tg:account:17785551209")
    assert first == {"id": "17785551209", "follow_me": ["42073723123"]}
    assert cache.get(b"tg:account:17785551209") is first
    assert fake.gets.count(b"tg:account:17785551209") == 1
    assert (cache.hits, cache.misses) == (1, 1)


def test_expired_entry_is_fetched_again(impl, fake, clock):
    fake.put("tg:alias:1", {"id": "1", "account_id": "a"})
    cache = make(impl, fake, clock)
    cache.get("tg:alias:1")
    fake.put("tg:alias:1", {"id": "1", "account_id": "b"})
    clock.now += 29
    assert cache.get("tg:alias:1")["account_id"] == "a"
    clock.now += 2
    assert cache.get("tg:alias:1")["account_id"] == "b"
    assert cache.misses == 2


def test_missing_key_is_cached_negatively_for_the_shorter_ttl(impl, fake, clock):
    cache = make(impl, fake, clock)
    assert cache.get("tg:account:404") is None
    fake.put("tg:account:404", {"id": "404"})
    clock.now += 4
    assert cache.get("tg:account:404") is None
    assert cache.negative_hits == 1
    clock.now += 2
    assert cache.get("tg:account:404") == {"id": "404"}
    assert fake.gets.count("tg:account:404") == 2


def test_zero_negative_ttl_disables_negative_caching(impl, fake, clock):
    cache = impl.RecordCache(fake, size=10, ttl=30, negative_ttl=0, clock=clock)
    assert cache.get("k") is None
    assert cache.get("k") is None
    assert fake.gets.count("k") == 2 and len(cache) == 0


def test_full_cache_evicts_the_oldest_unused_entry(impl, fake, clock):
    cache = make(impl, fake, clock, size=3)
    for key in "abc":
        cache.get(key)
    cache.get("a")  # a is used again: it gets a second chance, b is the victim
    cache.get("d")
    assert len(cache) == 3 and cache.evictions == 1
    fake.gets.clear()
    for key in "acd":
        cache.get(key)
    assert fake.gets == []
    cache.get("b")
    assert fake.gets == ["b"]


def test_invalidate_drops_both_spellings_of_a_key(impl, fake, clock):
    cache = make(impl, fake, clock)
    cache.get("tg:account:1")
    cache.get(b"tg:account:1")
    assert cache.invalidate(b"tg:account:1") is True
    assert len(cache) == 0 and cache.invalidate("tg:account:1") is False
    cache.get("tg:account:2")
    cache.invalidate_all()
    assert len(cache) == 0 and cache.flushes == 1


def test_redis_down_serves_the_expired_record_and_counts_it(impl, fake, clock):
    fake.put("tg:account:1", {"id": "1"})
    cache = make(impl, fake, clock)
    cache.get("tg:account:1")
    fake.down = True
    clock.now += 60
    assert cache.get("tg:account:1") == {"id": "1"}
    assert cache.stale_served == 1 and cache.errors >= 1


def test_redis_down_with_nothing_cached_raises_backend_unavailable(impl, fake, clock):
    cache = make(impl, fake, clock)
    cache.get("tg:account:404")  # a negative entry does not vouch for anyone once expired
    fake.down = True
    clock.now += 60
    with pytest.raises(BackendUnavailable):
        cache.get("tg:account:404")
    with pytest.raises(BackendUnavailable):
        cache.get("tg:account:never")
    assert issubclass(BackendUnavailable, Exception)
    assert impl.BackendUnavailable is BackendUnavailable


def test_after_a_failure_redis_is_not_asked_again_until_retry_interval(impl, fake, clock):
    fake.put("a", {"v": 1})
    cache = make(impl, fake, clock, retry_interval=2)
    cache.get("a")
    fake.down = True
    clock.now += 31
    cache.get("a")
    errors = cache.errors
    fake.down = False
    fake.put("a", {"v": 2})
    fake.gets.clear()
    assert cache.get("a") == {"v": 1} and fake.gets == [] and cache.errors == errors
    clock.now += 2
    assert cache.get("a") == {"v": 2}


def test_poll_applies_published_keys_and_star(impl, fake, clock):
    cache = make(impl, fake, clock)
    for key in ("tg:account:1", "tg:account:2", "tg:account:3"):
        cache.get(key)
    fake.publish(b"tg:account:1")
    assert cache.poll() == 1
    assert len(cache) == 2
    fake.publish(b"*")
    cache.poll()
    assert len(cache) == 0


def test_poll_flushes_when_the_generation_moves_without_its_messages(impl, fake, clock):
    fake.data["tg:gen"] = b"7"
    cache = make(impl, fake, clock, gen_check_interval=1)
    cache.get("a")
    fake.data["tg:gen"] = b"8"
    cache.poll()
    assert len(cache) == 1  # not due yet
    clock.now += 1
    cache.poll()
    assert len(cache) == 1  # ahead once: its messages may be on the way
    clock.now += 1
    cache.poll()
    assert len(cache) == 0 and cache.flushes == 1


def test_poll_survives_redis_down(impl, fake, clock):
    cache = make(impl, fake, clock)
    cache.get("a")
    fake.down = True
    assert cache.poll() == 0
    assert cache.errors == 1 and not cache.connected


def test_connection_is_made_lazily(impl, fake, clock):
    made = []

    def factory():
        made.append(1)
        return fake

    cache = impl.RecordCache(factory, size=10, clock=clock)
    assert made == [] and not cache.connected
    assert cache.connect() is True
    assert made == [1] and cache.connected


def test_connect_reports_a_down_redis(impl, fake, clock):
    fake.down = True
    cache = make(impl, fake, clock)
    assert cache.connect() is False and cache.errors == 1


@pytest.mark.parametrize("kw", [{"size": 0}, {"ttl": 0}, {"negative_ttl": -1}])
def test_bad_settings_are_rejected(impl, fake, kw):
    args = {"size": 10, "ttl": 30, "negative_ttl": 5, **kw}
    with pytest.raises(ValueError):
        impl.RecordCache(fake, **args)


def test_stats_has_every_counter(impl, fake, clock):
    cache = make(impl, fake, clock)
    cache.get("x")
    stats = cache.stats()
    assert stats["misses"] == 1 and stats["size"] == 1
    assert set(stats) >= {"hits", "misses", "negative_hits", "stale_served", "evictions", "errors"}
