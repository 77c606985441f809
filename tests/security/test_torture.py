"""RFC 4475 torture messages against the real proxy (Kamailio + KEMI), over UDP from
loopback sources other than 127.0.0.1: every message gets the answer the RFC allows,
none costs a Python exception, a worker or memory, and the proxy still answers OPTIONS.
"""
from __future__ import annotations

import secrets

import pytest

from tests.security import rawsip, rfc4475
from tests.security.rfc4475 import ANSWER, REFUSE, SILENT

pytestmark = pytest.mark.e2e

# Kamailio 5.6's own parser drops these three before any route runs (nothing answers,
# nothing of ours sees them); a strict xfail tells us when that changes
CORE_DROPS = {
    "wsinv": "CSeq folded over two lines: 'parse_cseq(): no method found'",
    "intmeth": "token characters in a header name: 'parse_sip_header_name(): invalid "
               "header name for [extensionHeader-!.%*+_`'~:'",
    "esc02": "'%' in a header name: 'parse_sip_header_name(): invalid header name for "
             "[C%6Fntact:'",
}
ANSWER_WAIT = 5.0    # s; an answer ends the wait at once
SILENCE_WAIT = 1.0   # s of silence taken as "no answer"
LEAK_ROUNDS = 20     # every torture message this many times after a warm-up round
LEAK_BOUND_KB = 10 * 1024


@pytest.fixture(scope="module")
def sources():
    return rawsip.Sources(41)


@pytest.fixture(scope="module")
def workers(tg):
    """Kamailio's processes once the stack is up (every later check compares with it)."""
    return rawsip.all_processes(tg)


@pytest.fixture
def kamailio_log(tg):
    return rawsip.LogWatch(tg.dir / "kamailio.log")


def target(tg) -> tuple[str, int]:
    return tg.settings.sip_address, tg.settings.sip_port


def _param(t: rfc4475.Torture):
    marks = [pytest.mark.xfail(reason="Kamailio drops it: " + CORE_DROPS[t.name], strict=True)
             ] if t.name in CORE_DROPS else []
    return pytest.param(t, id=f"{t.section}-{t.name}", marks=marks)


@pytest.mark.parametrize("torture", [_param(t) for t in rfc4475.ALL])
def test_each_torture_message_gets_the_answer_the_rfc_allows(tg, workers, kamailio_log,
                                                             sources, torture):
    with rawsip.Endpoint(target(tg), sources.next()) as phone:
        phone.send(torture.raw)
        phone.wait_final(ANSWER_WAIT if torture.expect == ANSWER else SILENCE_WAIT)
        replies = [str(r) for r in phone.replies]
    problems = []
    if torture.expect == ANSWER and not any(r.code for r in phone.replies):
        problems.append(f"no SIP answer to {torture.name}: {replies}")
    elif torture.expect == REFUSE and any(not 400 <= r.code < 500 for r in phone.replies):
        problems.append(f"{torture.name} is invalid, yet got {replies}")
    elif torture.expect == SILENT and replies:
        problems.append(f"{torture.name} is a response, yet its sender got {replies}")
    problems += rawsip.kamailio_health(tg, workers, kamailio_log, sources.next())
    assert not problems, "\n".join(problems)


def test_a_stray_response_is_not_relayed_to_its_second_via(tg, workers, kamailio_log,
                                                          sources):
    """RFC 4475 3.3.10 (bcast): a response that matches no transaction of ours must not be
    forwarded to the address in its second Via; else anyone can make the proxy send
    datagrams to an address of their choosing (255.255.255.255 in the RFC's message,
    here a socket of the test's own)."""
    with rawsip.Endpoint(target(tg), sources.next()) as victim, \
            rawsip.Endpoint(target(tg), sources.next()) as forger:
        branch = secrets.token_hex(6)
        forged = rfc4475.BCAST.replace(
            b"255.255.255.255;branch=z9hG4bK1saber23",
            f"{victim.address}:{victim.port};branch=z9hG4bK{branch}".encode()).replace(
            b"bcast.0384840201234ksdfak3j2erwedfsASdf", f"bcast.{branch}".encode())
        forger.send(forged)
        reflected = victim.wait_final(SILENCE_WAIT)
    problems = [f"the proxy relayed a stray response: {reflected}"] if reflected else []
    problems += rawsip.kamailio_health(tg, workers, kamailio_log, sources.next())
    assert not problems, "\n".join(problems)


def test_kamailio_survives_repeated_torture_without_growing(tg, workers, kamailio_log,
                                                            sources):
    """A warm-up round, then LEAK_ROUNDS more: Kamailio's private memory (heap, Python
    objects) may not grow by more than LEAK_BOUND_KB, no worker may die, nothing may
    raise, and OPTIONS is still answered."""
    messages = [t.raw for t in rfc4475.ALL]
    rawsip.exchange_all(target(tg), messages, sources, SILENCE_WAIT)
    before = rawsip.processes(tg.procs["kamailio"].pid)
    for _ in range(LEAK_ROUNDS):
        rawsip.exchange_all(target(tg), messages, sources, SILENCE_WAIT / 2)
    after = rawsip.processes(tg.procs["kamailio"].pid)
    problems = rawsip.kamailio_health(tg, workers, kamailio_log, sources.next())
    grown = after.total_kb - before.total_kb
    if grown > LEAK_BOUND_KB:
        per_pid = {p: after.rss_anon_kb[p] - before.rss_anon_kb.get(p, 0) for p in after.pids}
        problems.append(f"RssAnon grew {grown} kB over {LEAK_ROUNDS * len(messages)} "
                        f"messages: {per_pid}")
    assert not problems, "\n".join(problems)
