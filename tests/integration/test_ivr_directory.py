"""The directory as the IVR uses it: record lookups and PIN failure counters, real Redis."""
from __future__ import annotations

import msgpack
import pytest

from tollgate.directory import Directory

pytestmark = pytest.mark.integration


def test_records_are_read_from_their_keys(redis_client):
    account = {"id": "17785551210", "customer_id": 1, "associated_number": "1778555"}
    redis_client.set("tg:account:17785551210", msgpack.packb(account))
    redis_client.set("tg:alias:1778555#4545",
                     msgpack.packb({"id": "1778555#4545", "account_id": "17785551209"}))
    redis_client.set("tg:app:1", msgpack.packb({"id": 1, "type": "pass_through", "settings": {}}))
    directory = Directory(redis_client)
    assert directory.account("17785551210") == account
    assert directory.alias("1778555#4545")["account_id"] == "17785551209"
    assert directory.app("1")["type"] == "pass_through"
    assert directory.account("nobody") is None


def test_failures_count_up_and_expire(redis_client):
    directory = Directory(redis_client)
    assert directory.failures("17785551210") == 0
    assert directory.record_failure("17785551210", 300) == 1
    assert directory.record_failure("17785551210", 300) == 2
    assert directory.failures("17785551210") == 2
    assert 0 < redis_client.ttl("tg:pinfail:17785551210") <= 300
