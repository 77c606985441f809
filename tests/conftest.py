"""Shared fixtures: real Redis and PostgreSQL on free ports, started once per session."""
from __future__ import annotations

import itertools

import pytest
import redis

from tests.servers import PostgresServer, RedisServer

_db_names = itertools.count()


@pytest.fixture(scope="session")
def redis_server():
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
def redis_client(redis_server):
    """A client on a flushed Redis."""
    client = redis.Redis(port=redis_server.port)
    client.flushall()
    yield client
    client.close()


@pytest.fixture(scope="session")
def pg_server():
    server = PostgresServer().start()
    yield server
    server.discard()


@pytest.fixture
def pg_dsn(pg_server):
    """The DSN of a fresh, empty database (no migrations applied), dropped afterwards."""
    name = f"t{next(_db_names)}"
    yield pg_server.fresh_database(name)
    pg_server.drop_database(name)
