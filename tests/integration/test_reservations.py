"""Reservations in real Redis: billing/money.lua holds funds atomically under the money rule."""
import multiprocessing
import threading
import time
from decimal import Decimal as D

import pytest
import redis

from billing.classify import Decision
from billing.money import ACCOUNT, CUSTOMER, DAILY, SKIP, bounds, daily, from_micro
from billing.rating import Rate
from tests.money_cases import ACCOUNT_ID, CALL, CASES, CUSTOMER_ID, DAY
from tollgate import keyspace
from tollgate.reservations import Reservations

pytestmark = pytest.mark.integration

RATE = Rate("1", price_first=D("0.06"), price_next=D("0.06"), interval_first=60,
            interval_next=60, connect_fee=D("0.10"))
PAID = Decision(200, "Paid", "pstn", payer="17785551209", customer_id=1, rate=RATE, paid=True)
DEBIT = {"id": "17785551209", "customer_id": 1, "billing_model": "debit"}
CREDIT = {"id": "17785551210", "customer_id": 1, "billing_model": "credit", "credit_limit": "50"}
CUSTOMER_RECORD = {"id": 1, "credit_limit": "100"}


@pytest.fixture
def resv(redis_client):
    return Reservations(redis_client)


def redis_now_ms(client: redis.Redis) -> int:
    seconds, micros = client.time()
    return seconds * 1000 + micros // 1000


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_the_table_of_cases(case, resv, redis_client):
    """The Lua gives each case of tests/money_cases.py the Outcome the Python rule gives."""
    now = redis_now_ms(redis_client)
    keys = {scope: (keyspace.balance(scope, ident), keyspace.reservations(scope, ident))
            for scope, ident in ((ACCOUNT, ACCOUNT_ID), (CUSTOMER, CUSTOMER_ID))}
    keys[DAILY] = (keyspace.daily_spent(CUSTOMER_ID, DAY),
                   keyspace.reservations(DAILY, CUSTOMER_ID))
    for scope, balance in ((ACCOUNT, case.balance), (CUSTOMER, case.customer_balance),
                           (DAILY, case.spent)):
        if balance is not None:
            redis_client.set(keys[scope][0], balance)
        entries = case.entries(scope, now)
        if entries:
            redis_client.hset(keys[scope][1], mapping=entries)
    before = {scope: redis_client.hget(keys[scope][1], CALL) for scope in keys}
    out = resv.reserve(CALL, D(case.amount), case.account(), case.customer(), ttl_s=60,
                       minimum=D(case.minimum), day=DAY)
    assert out == case.expect
    # the hold is recorded on every balance the payer involves; a refusal changes nothing
    every = (*bounds(case.account(), case.customer()), daily(case.customer()))
    for scope, bound in zip((ACCOUNT, CUSTOMER, DAILY), every):
        stored = redis_client.hget(keys[scope][1], CALL)
        if out.ok and bound.mode != SKIP:
            assert from_micro(int(stored.split(b":")[0])) == out.reserved
        else:
            assert stored == before[scope]


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


def test_reserve_held_release(resv, redis_client):
    redis_client.set("tg:bal:account:17785551209", "5.5")
    out = resv.reserve("c1", D("2.25001"), DEBIT, {}, ttl_s=60)
    assert (out.ok, out.available, out.reserved) == (True, D("5.5"), D("2.25001"))
    assert resv.held("account", "17785551209") == D("2.25001")
    # debit accounts never touch the customer's credit
    assert not redis_client.exists("tg:resv:customer:1")
    assert resv.release("c1", "17785551209", 1) == 1
    assert resv.release("c1", "17785551209", 1) == 0
    assert resv.held("account", "17785551209") == D("0")


def test_release_drops_both_holds_of_a_credit_call(resv, redis_client):
    redis_client.set("tg:bal:account:17785551210", "10")
    redis_client.set("tg:bal:customer:1", "0")
    assert resv.reserve("c1", D("2"), CREDIT, CUSTOMER_RECORD, ttl_s=60).ok
    assert resv.held("customer", 1) == resv.held("account", "17785551210") == D("2")
    assert resv.release("c1", "17785551210", 1) == 2
    assert not redis_client.exists("tg:resv:account:17785551210", "tg:resv:customer:1")


def test_retransmitted_reservation_replaces_its_own_amount(resv, redis_client):
    redis_client.set("tg:bal:account:17785551209", "1")
    assert resv.reserve("c1", D("0.8"), DEBIT, {}, ttl_s=60).ok
    assert resv.reserve("c1", D("0.9"), DEBIT, {}, ttl_s=60).ok
    assert resv.held("account", "17785551209") == D("0.9")


def test_expired_reservations_stop_counting_and_are_pruned(resv, redis_client):
    redis_client.set("tg:bal:account:17785551209", "1")
    assert resv.reserve("crashed-node-call", D("1"), DEBIT, {}, ttl_s=0.2).ok
    assert not resv.reserve("c2", D("0.5"), DEBIT, {}, ttl_s=60).ok
    deadline = time.monotonic() + 10  # until its 0.2 s are over
    while resv.held("account", "17785551209") != D("0"):
        assert time.monotonic() < deadline, "the crashed node's reservation never expired"
        time.sleep(0.02)
    assert resv.reserve("c2", D("0.5"), DEBIT, {}, ttl_s=60).ok
    assert redis_client.hkeys("tg:resv:account:17785551209") == [b"c2"]


def test_reservation_hashes_expire_with_their_calls(resv, redis_client):
    redis_client.set("tg:bal:account:17785551209", "1")
    resv.reserve("c1", D("0.5"), DEBIT, {}, ttl_s=60)
    assert 0 < redis_client.pttl("tg:resv:account:17785551209") <= 60000


def test_missing_balance_fails_closed(resv, redis_client):
    assert resv.authorize("c1", PAID, DEBIT, {}).code == 503
    assert not redis_client.exists("tg:resv:account:17785551209")


def test_authorize_reserves_the_hard_cap_and_refuses_the_next(resv, redis_client):
    redis_client.set("tg:bal:account:17785551209", "1.00000")
    first = resv.authorize("c1", PAID, DEBIT, {})
    assert (first.code, first.max_duration, first.reserve) == (200, 900, D("1.00000"))
    assert resv.authorize("c2", PAID, DEBIT, {}).code == 402


def test_authorize_stops_at_the_cap(resv, redis_client):
    redis_client.set("tg:bal:account:17785551209", "5.5")
    granted = resv.authorize("c1", PAID, DEBIT, {}, cap=600)   # 0.10 + 10 x 0.06
    assert (granted.code, granted.max_duration, granted.reserve) == (200, 600, D("0.70000"))
    assert resv.held("account", "17785551209") == D("0.70000")


def test_authorize_takes_what_a_concurrent_call_left(resv, redis_client):
    redis_client.set("tg:bal:account:17785551209", "1.00000")
    Reservations(redis_client).reserve("other", D("0.5"), DEBIT, {}, ttl_s=60)
    # 0.5 left buys 0.10 + 6 minutes of 0.06 = 0.46; the 0.5 stays held until the xDR
    granted = resv.authorize("c1", PAID, DEBIT, {})
    assert (granted.code, granted.reserve, granted.max_duration) == (200, D("0.50000"), 360)
    assert resv.held("account", "17785551209") == D("1.00000")
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


def test_authorize_refusal_stores_nothing_and_minimum_is_exact(resv, redis_client):
    redis_client.set("tg:bal:account:17785551209", "0.15999")
    refused = resv.authorize("c1", PAID, DEBIT, {})
    assert (refused.code, refused.reason, refused.max_duration) == (402, "Insufficient funds",
                                                                    None)
    assert not redis_client.exists("tg:resv:account:17785551209")
    redis_client.set("tg:bal:account:17785551209", "0.16")
    granted = resv.authorize("c1", PAID, DEBIT, {})
    assert (granted.code, granted.max_duration, granted.reserve) == (200, 60, D("0.16000"))


def test_authorize_credit_holds_on_both_balances(resv, redis_client):
    redis_client.set("tg:bal:account:17785551210", "10")      # 40 of 50 left
    redis_client.set("tg:bal:customer:1", "97.5")             # 2.5 of 100 left
    granted = resv.authorize("c1", PAID, CREDIT, CUSTOMER_RECORD, cap=3600)
    assert (granted.code, granted.reserve) == (200, D("2.50000"))
    assert resv.held("customer", 1) == resv.held("account", "17785551210") == D("2.50000")
    assert resv.authorize("c2", PAID, CREDIT, CUSTOMER_RECORD).code == 402


def test_authorize_unlimited_reserves_the_full_amount(resv, redis_client):
    account = {**CREDIT, "credit_limit": None}
    granted = resv.authorize("c1", PAID, account, {"credit_limit": None}, cap=3600)
    assert (granted.code, granted.max_duration, granted.reserve) == (200, 3600, D("3.70000"))
    assert resv.held("account", "17785551210") == D("3.70000")


def test_authorize_retransmission_replaces_its_own_reservation(resv, redis_client):
    redis_client.set("tg:bal:account:17785551209", "1")
    first = resv.authorize("c1", PAID, DEBIT, {})
    again = resv.authorize("c1", PAID, DEBIT, {})
    assert first == again and again.reserve == D("1.00000")
    assert resv.held("account", "17785551209") == D("1.00000")


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
    assert Reservations(redis_client).held("account", "17785551209") == sum(
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
    assert Reservations(redis_client).held("account", "17785551209") == D("1.10000")


def test_script_survives_a_script_flush(resv, redis_client):
    redis_client.set("tg:bal:account:17785551209", "1")
    redis_client.script_flush()
    assert resv.reserve("c1", D("0.5"), DEBIT, {}, ttl_s=60).ok


# --- the client's max daily usage (external calls) ---------------------------------------

VANCOUVER = {"id": 7, "credit_limit": None, "max_daily_usage": "1.00",
             "timezone": "America/Vancouver"}
DEBIT_OF_7 = {**DEBIT, "customer_id": 7}
# 2026-12-01 23:59:30 and 2026-12-02 00:00:30 in Vancouver (UTC-8)
BEFORE_MIDNIGHT, AFTER_MIDNIGHT = 1796198370.0, 1796198430.0


def test_the_day_is_the_clients_and_a_new_day_starts_over(resv, redis_client):
    redis_client.set("tg:bal:account:17785551209", "50")
    redis_client.set(keyspace.daily_spent(7, "2026-12-01"), "1.00000")
    refused = resv.authorize("c1", PAID, DEBIT_OF_7, VANCOUVER, external=True,
                             now=BEFORE_MIDNIGHT)
    assert (refused.code, refused.reason) == (403, "Max daily usage reached")
    assert not redis_client.exists(keyspace.reservations(DAILY, 7))
    # midnight in Vancouver (08:00 UTC): the day's counter is another key, still empty
    granted = resv.authorize("c1", PAID, DEBIT_OF_7, VANCOUVER, external=True,
                             now=AFTER_MIDNIGHT)
    assert (granted.code, granted.reserve, granted.max_duration) == (200, D("1.00000"), 900)
    assert resv.held(DAILY, 7) == D("1.00000")
    # the same call, not external (on-net, the IVR leg): no daily bound
    assert resv.authorize("c2", PAID, DEBIT_OF_7, VANCOUVER, now=BEFORE_MIDNIGHT).code == 200


def test_a_refusal_for_the_daily_limit_marks_the_day_for_the_e_mail(resv, redis_client):
    redis_client.set("tg:bal:account:17785551209", "50")
    redis_client.set(keyspace.daily_spent(7, "2026-12-01"), "0.9")
    assert resv.authorize("c1", PAID, DEBIT_OF_7, VANCOUVER, external=True,
                          now=BEFORE_MIDNIGHT).code == 403
    assert redis_client.smembers(keyspace.DAILY_REACHED) == {b"7:2026-12-01"}


def test_concurrent_external_calls_never_hold_more_than_the_day_allows(resv, redis_client):
    redis_client.set("tg:bal:account:17785551209", "50")
    held = [resv.authorize(f"c{n}", PAID, DEBIT_OF_7, VANCOUVER, external=True,
                           now=AFTER_MIDNIGHT) for n in range(4)]
    assert [g.code for g in held] == [200, 403, 403, 403]
    assert resv.release("c0", "17785551209", 7) == 2   # the account's and the day's holds
    assert resv.held(DAILY, 7) == D("0")


def test_an_unreadable_daily_spend_is_unavailable_never_free(resv, redis_client):
    redis_client.set("tg:bal:account:17785551209", "50")
    redis_client.set(keyspace.daily_spent(7, "2026-12-02"), "garbage")
    assert resv.authorize("c1", PAID, DEBIT_OF_7, VANCOUVER, external=True,
                          now=AFTER_MIDNIGHT).code == 503


def test_daily_reached_reads_the_spend_of_today(resv, redis_client):
    assert not resv.daily_reached(VANCOUVER, now=BEFORE_MIDNIGHT)
    redis_client.set(keyspace.daily_spent(7, "2026-12-01"), "1.00000")
    assert resv.daily_reached(VANCOUVER, now=BEFORE_MIDNIGHT)
    assert not resv.daily_reached(VANCOUVER, now=AFTER_MIDNIGHT)
    assert not resv.daily_reached({**VANCOUVER, "max_daily_usage": None}, now=BEFORE_MIDNIGHT)


def test_a_paid_call_takes_its_clients_call_slot_in_the_same_script(resv, redis_client):
    """Max calls of a paid call: the slot is taken with the funds; the N+1th paid call is
    refused 403 before any money is held, a retransmission keeps its own slot."""
    redis_client.set("tg:bal:account:17785551209", "10.00000")
    assert resv.authorize("c1", PAID, DEBIT, {"id": 1}, max_calls=2, cap=600).code == 200
    assert resv.authorize("c2", PAID, DEBIT, {"id": 1}, max_calls=2, cap=600).code == 200
    refused = resv.authorize("c3", PAID, DEBIT, {"id": 1}, max_calls=2, cap=600)
    assert (refused.code, refused.reason, refused.reserve) == (403, "Max calls reached", None)
    assert redis_client.hget(keyspace.reservations(ACCOUNT, "17785551209"), "c3") is None
    assert set(redis_client.hkeys(keyspace.call_slots(1))) == {b"c1", b"c2"}
    assert resv.authorize("c1", PAID, DEBIT, {"id": 1}, max_calls=2, cap=600).code == 200
    redis_client.hdel(keyspace.call_slots(1), "c1")  # its dialog ended
    assert resv.authorize("c3", PAID, DEBIT, {"id": 1}, max_calls=2, cap=600).code == 200


def test_a_call_refused_for_money_takes_no_call_slot(resv, redis_client):
    redis_client.set("tg:bal:account:17785551209", "0.01")
    assert resv.authorize("c1", PAID, DEBIT, {"id": 1}, max_calls=2, cap=600).code == 402
    assert not redis_client.exists(keyspace.call_slots(1))


def test_paid_and_free_calls_share_the_clients_slots(resv, redis_client):
    """tollgate.slots (free calls, calls in) and the reservation script count one hash."""
    from tollgate.slots import Slots
    redis_client.set("tg:bal:account:17785551209", "10.00000")
    assert Slots(redis_client).take(1, "free", 2, 60)
    assert resv.authorize("paid", PAID, DEBIT, {"id": 1}, max_calls=2, cap=600).code == 200
    assert not Slots(redis_client).take(1, "third", 2, 60)
    assert resv.authorize("fourth", PAID, DEBIT, {"id": 1}, max_calls=2, cap=600).code == 403
    # the slot lives as long as the reservation (the longest call and its margin)
    assert 0 < redis_client.pttl(keyspace.call_slots(1)) <= (600 + 120) * 1000
