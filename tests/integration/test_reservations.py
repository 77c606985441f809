"""Reservations in real Redis: atomic Lua reserve/release under the money model."""
import threading
import time
from decimal import Decimal as D

import pytest
import redis

from billing.classify import Decision
from billing.rating import Rate
from tollgate.reservations import Reservations

pytestmark = pytest.mark.integration

RATE = Rate("1", price_first=D("0.06"), price_next=D("0.06"), interval_first=60,
            interval_next=60, connect_fee=D("0.10"))
PAID = Decision(200, "Paid", "pstn", payer="17785551209", customer_id=1, rate=RATE, paid=True)
DEBIT = {"id": "17785551209", "customer_id": 1, "billing_model": "debit"}
CREDIT = {"id": "17785551210", "customer_id": 1, "billing_model": "credit", "credit_limit": "50"}
CUSTOMER = {"id": 1, "credit_limit": "100"}


@pytest.fixture
def resv(redis_client):
    return Reservations(redis_client)


def test_two_concurrent_reservations_on_a_balance_covering_one(redis_server, redis_client):
    redis_client.set("tg:bal:account:17785551209", "1.00000")
    barrier = threading.Barrier(8)
    results = []

    def attempt(n):
        mine = Reservations(redis.Redis(port=redis_server.port))
        barrier.wait()
        results.append(mine.reserve(f"call-{n}", D("0.60"), DEBIT, {}, ttl_s=60).ok)

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]


def test_peek_reserve_release(resv, redis_client):
    redis_client.set("tg:bal:account:17785551209", "5.5")
    assert resv.peek(DEBIT, {}).available == D("5.5")
    out = resv.reserve("c1", D("2.25001"), DEBIT, {}, ttl_s=60)
    assert out.ok and out.available == D("5.5")
    assert resv.peek(DEBIT, {}).available == D("3.24999")
    assert resv.reserved("account", "17785551209") == D("2.25001")
    # debit accounts never touch the customer's credit
    assert not redis_client.exists("tg:resv:customer:1")
    assert resv.release("c1", "17785551209", 1) == 1
    assert resv.release("c1", "17785551209", 1) == 0
    assert resv.peek(DEBIT, {}).available == D("5.5")


def test_retransmitted_reservation_replaces_its_own_amount(resv, redis_client):
    redis_client.set("tg:bal:account:17785551209", "1")
    assert resv.reserve("c1", D("0.8"), DEBIT, {}, ttl_s=60).ok
    assert resv.reserve("c1", D("0.9"), DEBIT, {}, ttl_s=60).ok
    assert resv.reserved("account", "17785551209") == D("0.9")


def test_credit_account_is_capped_by_the_customer(resv, redis_client):
    redis_client.set("tg:bal:account:17785551210", "10")      # owes 10 of 50
    redis_client.set("tg:bal:customer:1", "97.5")             # owes 97.5 of 100
    assert resv.peek(CREDIT, CUSTOMER).available == D("2.5")
    out = resv.reserve("c1", D("3"), CREDIT, CUSTOMER, ttl_s=60)
    assert (out.ok, out.scope, out.available) == (False, "customer", D("2.5"))
    assert resv.reserve("c2", D("2"), CREDIT, CUSTOMER, ttl_s=60).ok
    assert resv.reserved("customer", 1) == D("2")


def test_unlimited_credit_reserves_without_a_balance(resv, redis_client):
    account = {**CREDIT, "credit_limit": None}
    out = resv.reserve("c1", D("7"), account, {"credit_limit": None}, ttl_s=60)
    assert out.ok and out.available is None


def test_missing_balance_fails_closed(resv):
    out = resv.reserve("c1", D("0.1"), DEBIT, {}, ttl_s=60)
    assert not out.ok and out.unknown_balance
    assert resv.authorize("c1", PAID, DEBIT, {}).code == 503


def test_expired_reservations_stop_counting(resv, redis_client):
    redis_client.set("tg:bal:account:17785551209", "1")
    assert resv.reserve("crashed-node-call", D("1"), DEBIT, {}, ttl_s=0.2).ok
    assert not resv.reserve("c2", D("0.5"), DEBIT, {}, ttl_s=60).ok
    time.sleep(0.3)
    assert resv.reserve("c2", D("0.5"), DEBIT, {}, ttl_s=60).ok
    assert redis_client.hkeys("tg:resv:account:17785551209") == [b"c2"]


def test_reservation_hashes_expire_with_their_calls(resv, redis_client):
    redis_client.set("tg:bal:account:17785551209", "1")
    resv.reserve("c1", D("0.5"), DEBIT, {}, ttl_s=60)
    assert 0 < redis_client.pttl("tg:resv:account:17785551209") <= 60000


def test_authorize_reserves_the_hard_cap_and_refuses_the_next(resv, redis_client):
    redis_client.set("tg:bal:account:17785551209", "1.00000")
    first = resv.authorize("c1", PAID, DEBIT, {})
    assert (first.code, first.max_duration, first.reserve) == (200, 900, D("1.00000"))
    assert resv.authorize("c2", PAID, DEBIT, {}).code == 402


def test_authorize_retries_after_losing_a_race(resv, redis_client):
    redis_client.set("tg:bal:account:17785551209", "1.00000")
    real_peek = resv.peek

    def stale_peek(account, customer):
        seen = real_peek(account, customer)
        # another call reserves 0.5 between our peek and our reserve: 0.5 left buys
        # 0.10 + 6 minutes of 0.06 = 0.46
        Reservations(redis_client).reserve("other", D("0.5"), DEBIT, {}, ttl_s=60)
        return seen

    resv.peek = stale_peek
    granted = resv.authorize("c1", PAID, DEBIT, {})
    assert (granted.code, granted.reserve, granted.max_duration) == (200, D("0.46000"), 360)


def test_script_survives_a_script_flush(resv, redis_client):
    redis_client.set("tg:bal:account:17785551209", "1")
    redis_client.script_flush()
    assert resv.reserve("c1", D("0.5"), DEBIT, {}, ttl_s=60).ok
