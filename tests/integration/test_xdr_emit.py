"""xDR events leave Kamailio through XdrEmitter: Redis when it answers, a spool when not."""
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.servers import RedisServer, log_dir
from tollgate.xdr_emit import STREAM, XdrEmitter


def _client(port):
    return redis.Redis(port=port, socket_timeout=0.2, socket_connect_timeout=0.2,
                       retry=Retry(NoBackoff(), 0))


def test_events_spooled_while_redis_is_down_are_replayed_once_in_order():
    server = RedisServer(appendonly=True).start()
    spool = log_dir("spool")
    emitter = XdrEmitter(_client(server.port), spool)
    try:
        assert emitter.emit(b"first") is True
        server.stop()
        assert emitter.emit(b"second") is False
        assert emitter.emit(b"third") is False
        with pytest.raises(redis.ConnectionError):
            emitter.replay()  # the spool stays for the next attempt
    finally:
        server.start()
    assert emitter.replay() == 2
    assert emitter.replay() == 0
    stored = [fields[b"m"] for _, fields in _client(server.port).xrange(STREAM)]
    assert stored == [b"first", b"second", b"third"]
    server.stop()


def test_a_torn_last_frame_is_ignored_and_the_rest_replayed(redis_server, redis_client):
    spool = log_dir("spool")
    emitter = XdrEmitter(redis_client, spool)
    emitter._spool(b"whole")
    with open(emitter._spool_file(), "ab") as f:
        f.write(b"\x00\x00\x00\x10tor")  # a crash mid-append
    assert emitter.replay() == 1
    assert [fields[b"m"] for _, fields in redis_client.xrange(STREAM)] == [b"whole"]
