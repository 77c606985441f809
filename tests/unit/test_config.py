"""Layered settings: bad values get one clear error, never a silent 'no limit'."""
import pytest

from tollgate import config


def test_environment_overrides_defaults(monkeypatch):
    monkeypatch.setenv("TOLLGATE_MAX_CALL_DURATION", "600")
    assert config.load().max_call_duration == 600


@pytest.mark.parametrize("name", ["max_call_duration", "ivr_answer_timeout", "ivr_workers"])
def test_a_zero_limit_is_refused(name):
    with pytest.raises(ValueError, match=f"setting {name}: must be at least 1"):
        config.load(**{name: 0})


def test_a_word_for_a_number_is_refused():
    with pytest.raises(ValueError, match="is not a whole number"):
        config.load(sip_port="five")


def test_a_replica_wait_the_socket_would_not_outlast_is_refused():
    with pytest.raises(ValueError, match="redis_replica_wait_ms: 200 must be below "
                                         r"redis_timeout_ms \(200\)"):
        config.load(redis_replica_wait_ms=200)
    assert config.load(redis_replica_wait_ms=150).redis_replica_wait_ms == 150
