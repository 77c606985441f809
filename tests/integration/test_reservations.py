"""Reservations in real Redis: atomic Lua reserve/release under the money model."""
import multiprocessing
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


def test_authorize_takes_what_a_concurrent_call_left(resv, redis_client):
    redis_client.set("tg:bal:account:17785551209", "1.00000")
    Reservations(redis_client).reserve("other", D("0.5"), DEBIT, {}, ttl_s=60)
    # 0.5 left buys 0.10 + 6 minutes of 0.06 = 0.46; the 0.5 stays held until the xDR
    granted = resv.authorize("c1", PAID, DEBIT, {})
    assert (granted.code, granted.reserve, granted.max_duration) == (200, D("0.50000"), 360)
    assert resv.reserved("account", "17785551209") == D("1.00000")
    assert resv.authorize("c2", PAID, DEBIT, {}).code == 402


def test_authorize_is_one_round_trip(resv, redis_client, monkeypatch):
    redis_client.set("tg:bal:account:17785551209", "1.00000")
    calls = []
    real = resv._reserve

    def counted(**kwargs):
        calls.append(kwargs["args"])
        return real(**kwargs)

    monkeypatch.setattr(resv, "_reserve", counted)
    assert resv.authorize("c1", PAID, DEBIT, {}, cap=600).code == 200
    assert len(calls) == 1


def test_up_to_reserves_the_full_amount_when_available(resv, redis_client):
    redis_client.set("tg:bal:account:17785551209", "5.5")
    out = resv.reserve_up_to("c1", D("0.70"), D("0.16"), DEBIT, {}, ttl_s=60)
    assert (out.ok, out.available, out.reserved) == (True, D("5.5"), D("0.70000"))
    assert resv.reserved("account", "17785551209") == D("0.70000")
    granted = resv.authorize("c2", PAID, DEBIT, {}, cap=600)   # 0.10 + 10 x 0.06
    assert (granted.code, granted.max_duration, granted.reserve) == (200, 600, D("0.70000"))
    assert resv.peek(DEBIT, {}).available == D("4.10000")


def test_up_to_reserves_what_is_left_down_to_the_minimum(resv, redis_client):
    redis_client.set("tg:bal:account:17785551209", "0.45999")
    granted = resv.authorize("c1", PAID, DEBIT, {}, cap=7200)
    # 0.45999 buys 0.10 + 5 minutes (0.40); a 6th minute would cost 0.46
    assert (granted.code, granted.max_duration, granted.reserve) == (200, 300, D("0.45999"))
    assert resv.peek(DEBIT, {}).available == D("0.00000")
    redis_client.set("tg:bal:account:17785551209", "0.61")
    out = resv.reserve_up_to("c2", D("8"), D("0.16"), DEBIT, {}, ttl_s=60)
    assert (out.ok, out.available, out.reserved) == (False, D("0.15001"), D("0"))
    assert resv.authorize("c3", PAID, DEBIT, {}).code == 402
    assert resv.reserved("account", "17785551209") == D("0.45999")


def test_up_to_refusal_stores_nothing_and_minimum_is_exact(resv, redis_client):
    redis_client.set("tg:bal:account:17785551209", "0.15999")
    refused = resv.authorize("c1", PAID, DEBIT, {})
    assert (refused.code, refused.reason, refused.max_duration) == (402, "Insufficient funds",
                                                                    None)
    assert not redis_client.exists("tg:resv:account:17785551209")
    redis_client.set("tg:bal:account:17785551209", "0.16")
    granted = resv.authorize("c1", PAID, DEBIT, {})
    assert (granted.code, granted.max_duration, granted.reserve) == (200, 60, D("0.16000"))


def test_up_to_credit_is_bounded_by_the_smaller_scope(resv, redis_client):
    redis_client.set("tg:bal:account:17785551210", "10")      # 40 of 50 left
    redis_client.set("tg:bal:customer:1", "97.5")             # 2.5 of 100 left
    out = resv.reserve_up_to("c1", D("3"), D("0.16"), CREDIT, CUSTOMER, ttl_s=60)
    assert (out.ok, out.available, out.reserved) == (True, D("2.5"), D("2.50000"))
    assert resv.reserved("customer", 1) == D("2.50000")
    assert resv.reserved("account", "17785551210") == D("2.50000")
    out = resv.reserve_up_to("c2", D("3"), D("0.16"), CREDIT, CUSTOMER, ttl_s=60)
    assert (out.ok, out.scope, out.available) == (False, "customer", D("0"))


def test_up_to_unlimited_reserves_the_full_amount(resv, redis_client):
    account = {**CREDIT, "credit_limit": None}
    granted = resv.authorize("c1", PAID, account, {"credit_limit": None}, cap=3600)
    assert (granted.code, granted.max_duration, granted.reserve) == (200, 3600, D("3.70000"))
    assert resv.reserved("account", "17785551210") == D("3.70000")


def test_up_to_retransmission_replaces_its_own_reservation(resv, redis_client):
    redis_client.set("tg:bal:account:17785551209", "1")
    first = resv.authorize("c1", PAID, DEBIT, {})
    again = resv.authorize("c1", PAID, DEBIT, {})
    assert first == again and again.reserve == D("1.00000")
    assert resv.reserved("account", "17785551209") == D("1.00000")


def test_up_to_missing_balance_fails_closed(resv, redis_client):
    out = resv.reserve_up_to("c1", D("1"), D("0.16"), DEBIT, {}, ttl_s=60)
    assert (out.ok, out.unknown_balance, out.reserved) == (False, True, D("0"))
    assert not redis_client.exists("tg:resv:account:17785551209")


@pytest.mark.parametrize("balance, k", [("0.66", 3), ("0.81", 3), ("0.82", 4), ("0.15999", 0)])
def test_concurrent_authorizations_never_exceed_the_balance(redis_server, redis_client,
                                                            balance, k):
    # a 2-minute cap costs 0.22; the first minute 0.16
    redis_client.set("tg:bal:account:17785551209", balance)
    barrier = threading.Barrier(12)
    results = []

    def attempt(n):
        mine = Reservations(redis.Redis(port=redis_server.port))
        barrier.wait()
        results.append(mine.authorize(f"call-{n}", PAID, DEBIT, {}, cap=120))

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    granted = [d for d in results if d.code == 200]
    assert len(granted) == k
    assert all(d.code == 402 for d in results if d.code != 200)
    assert sum((d.reserve for d in granted), D(0)) <= D(balance)
    assert Reservations(redis_client).reserved("account", "17785551209") == sum(
        (d.reserve for d in granted), D(0))


def _authorize_in_process(port, n, start, queue):
    mine = Reservations(redis.Redis(port=port))
    start.wait()
    decision = mine.authorize(f"proc-{n}", PAID, DEBIT, {}, cap=120)
    queue.put((decision.code, str(decision.reserve), decision.max_duration))


def test_concurrent_processes_reserve_exactly_what_the_balance_covers(redis_server,
                                                                       redis_client):
    redis_client.set("tg:bal:account:17785551209", "1.10")    # five 2-minute calls
    ctx = multiprocessing.get_context("fork")
    start, queue = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_authorize_in_process, args=(redis_server.port, n, start, queue))
             for n in range(10)]
    for p in procs:
        p.start()
    start.set()
    outcomes = [queue.get(timeout=10) for _ in procs]
    for p in procs:
        p.join(10)
    assert sorted(outcomes) == [(200, "0.22000", 120)] * 5 + [(402, "None", None)] * 5
    assert Reservations(redis_client).reserved("account", "17785551209") == D("1.10000")


def test_script_survives_a_script_flush(resv, redis_client):
    redis_client.set("tg:bal:account:17785551209", "1")
    redis_client.script_flush()
    assert resv.reserve("c1", D("0.5"), DEBIT, {}, ttl_s=60).ok
