"""Two tollgate nodes (docs/NODES.md): two Kamailio + IVR pairs on loopback addresses of
their own, sharing Redis, PostgreSQL, rtpengine and the xDR writer, replicating bans,
failed-auth counters and dialogs over Kamailio's DMQ (tests/cluster.py).

- A source banned on node A is dropped by node B too, and failures counted on both nodes
  add up to one ban.
- A call set up on node A and ended on node B is billed once: a caller whose BYE goes to
  B (as after a DNS or outbound-proxy failover) gets it relayed by B, which knows the
  dialog from DMQ and takes A's Record-Route as its own; one xDR, one debit, the
  reservation released. While it lasts, the funds it holds refuse a call through B.
- A client with max 1 call and a call up on A has a call through B refused.
- Node A dies with a call up: a BYE through B still bills it once; nobody hanging up, B
  bills it at its cap.
- A KDMQ from outside the cluster is dropped.
- A personalized call through node B goes through B's own IVR.
"""
from __future__ import annotations

import json
import secrets
import time
from decimal import Decimal

import pytest
import redis

from tests import sipp, tenants
from tests.calls import TOLL, dial, enter_code_and_reach_gateway, talking
from tests.cluster import NODE_A, NODE_B, Cluster, NodeB, kamcmd
from tests.records import wait_until
from tests.security import rawsip
from tests.stack import sip_ping
from tollgate import keyspace

pytestmark = pytest.mark.e2e

PER_SECOND = Decimal("0.01")   # tenants.straight_out: 0.60 a minute, billed 1/1


@pytest.fixture(scope="module")
def cluster():
    nodes = Cluster().start()
    print(f"cluster logs: {nodes.a.dir}")
    yield nodes
    nodes.stop()


@pytest.fixture(scope="module")
def tg(cluster):
    """Node A's stack: the e2e fixtures (gateway, records, calls_end) run against it."""
    return cluster.a


def phone_at(cluster, sip, node: str, name: str, tenant):
    """A pjsua2 phone registered to one node (its outbound proxy), as `tenant`'s account
    (a tests.tenants.Tenant or Person)."""
    user = getattr(tenant, "account", None) or tenant.id
    ph = sip.phone(name)
    code = ph.register(f"sip:{cluster.target(node)}", user, tenant.password,
                       cluster.a.settings.sip_domain)
    assert code == 200, f"REGISTER {user} at node {node} got {code}"
    return ph


def guess_passwords(cluster, node: str, account: str, source: str,
                    done) -> None:
    """Wrong passwords from `source` to one node, in rounds of five, until done()."""
    target = cluster.target(node)
    for _ in range(6):
        if done():
            return
        sipp.run("register", target, service=account, user=account, password="guess",
                 calls=5, source=source, timeout=8)
    assert done(), f"guessing at node {node} from {source} did not get there"


def pinged(cluster, node: str, source: str) -> str:
    s = cluster.settings(node)
    return sip_ping(s.sip_address, s.sip_port, source=source)


def test_a_source_banned_on_node_a_is_dropped_by_node_b(cluster, tg):
    client = tenants.straight_out(tg)
    source = "127.0.0.52"
    assert pinged(cluster, NODE_B, source).startswith("SIP/2.0 200")
    guess_passwords(cluster, NODE_A, client.account, source,
                    lambda: pinged(cluster, NODE_A, source) == "")
    wait_until(lambda: cluster.htable(NODE_B, "ipban", source) == "1", 10,
               "the ban replicated to node B")
    assert pinged(cluster, NODE_B, source) == ""           # dropped silently, as on A
    assert pinged(cluster, NODE_B, "127.0.0.53").startswith("SIP/2.0 200")
    assert f"{source} banned after 10 failures" in cluster.log(NODE_A)
    assert f"{source} banned" not in cluster.log(NODE_B)   # B banned it by replication


def test_failures_on_both_nodes_add_up_to_one_ban(cluster, tg):
    client = tenants.straight_out(tg)
    source = "127.0.0.54"

    def failures(node: str) -> int:
        value = cluster.htable(node, "authfail", source)
        return int(value) if value else 0
    guess_passwords(cluster, NODE_A, client.account, source, lambda: failures(NODE_A) >= 5)
    counted = failures(NODE_A)
    assert counted < 10, "node A banned the source alone"
    wait_until(lambda: failures(NODE_B) == counted, 10, "node B counting A's failures")
    guess_passwords(cluster, NODE_B, client.account, source,
                    lambda: pinged(cluster, NODE_B, source) == "")
    assert f"{source} banned after 10 failures" in cluster.log(NODE_B)
    wait_until(lambda: pinged(cluster, NODE_A, source) == "", 10, "node A dropping it too")


def test_a_kdmq_from_outside_the_cluster_is_dropped(cluster, tg):
    """A forged KDMQ lifting a ban, sent from a source that is not a peer, to node B's DMQ
    socket and to its SIP socket: both dropped, the ban stands."""
    banned, forger = "127.0.0.55", "127.0.0.56"
    kamcmd(cluster.ctl(NODE_B), "htable.seti", "ipban", banned, "1")
    assert cluster.htable(NODE_B, "ipban", banned) == "1"
    b = cluster.settings(NODE_B)
    dmq_host, dmq_port = b.dmq_listen.rsplit(":", 1)
    lift = json.dumps({"action": 4, "htname": "ipban", "cname": banned, "type": 0,
                       "mode": 0}).encode()
    for host, port in ((dmq_host, int(dmq_port)), (b.sip_address, b.sip_port)):
        with rawsip.Endpoint((host, port), forger) as ep:
            ep.send(b"KDMQ sip:htable@" + f"{host}:{port}".encode() + b" SIP/2.0\r\n"
                    b"Via: SIP/2.0/UDP " + forger.encode() + rawsip.PORT
                    + b";branch=" + rawsip.new_branch() + b"\r\n"
                    b"From: <sip:htable@" + forger.encode() + b">;tag=forged\r\n"
                    b"To: <sip:htable@" + host.encode() + b">\r\n"
                    b"Call-ID: " + secrets.token_hex(8).encode() + b"\r\n"
                    b"CSeq: 1 KDMQ\r\nMax-Forwards: 1\r\n"
                    b"Content-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n" % len(lift) + lift)
    wait_until(lambda: cluster.log(NODE_B).count(f"dropped KDMQ from {forger}:") == 2, 10,
               "node B dropping both forged KDMQs")
    assert cluster.htable(NODE_B, "ipban", banned) == "1"


class RawCaller:
    """A caller on a raw UDP socket: it sets a call up through one node and can send its
    BYE to another, as a phone does after its outbound proxy or DNS fails over."""

    def __init__(self, cluster, node: str, source: str, account: str, password: str):
        s = cluster.settings(node)
        self.ep = rawsip.Endpoint((s.sip_address, s.sip_port), source)
        self.account, self.password = account, password
        self.domain = s.sip_domain
        self.call_id = f"{secrets.token_hex(10)}@two-nodes"
        self.tag = secrets.token_hex(4)
        self.cseq = 0

    def invite(self, dialed: str, auth: bytes = b"") -> bytes:
        self.cseq += 1
        addr = self.ep.address.encode()
        body = rawsip.sdp(self.ep.address, 40000)
        lines = [b"INVITE sip:" + dialed.encode() + b"@" + self.domain.encode() + b" SIP/2.0",
                 b"Via: SIP/2.0/UDP " + addr + rawsip.PORT + b";branch=" + rawsip.new_branch(),
                 b"Max-Forwards: 70",
                 f"From: <sip:{self.account}@{self.domain}>;tag={self.tag}".encode(),
                 f"To: <sip:{dialed}@{self.domain}>".encode(),
                 f"Call-ID: {self.call_id}".encode(), b"CSeq: %d INVITE" % self.cseq,
                 b"Contact: <sip:" + self.account.encode() + b"@" + addr + rawsip.PORT + b">"]
        if auth:
            lines.append(auth)
        lines += [b"Content-Type: application/sdp", b"Content-Length: %d" % len(body)]
        return b"\r\n".join(lines) + b"\r\n\r\n" + body

    def final(self, sip, message: bytes, what: str) -> rawsip.Reply:
        """Send, and the final reply, running the phones (the gateway) meanwhile."""
        after = len(self.ep.poll())
        self.ep.send(message)
        sip.wait_for(lambda: self.ep.poll() and self.ep.final(after) is not None, 15, what)
        found = self.ep.final(after)
        assert found is not None
        return found

    def call(self, sip, dialed: str) -> tuple[bytes, rawsip.Reply]:
        """INVITE, answer the challenge; the INVITE sent and its final answer (ACKed)."""
        sent = self.invite(dialed)
        challenge = self.final(sip, sent, "the challenge")
        assert challenge.code == 407, str(challenge)
        self.ep.send(rawsip.ack_for(sent, challenge))
        ruri = f"sip:{dialed}@{self.domain}"
        sent = self.invite(dialed, rawsip.digest(challenge, "INVITE", ruri,
                                                 self.account.encode(), self.password))
        answer = self.final(sip, sent, "the answer")
        if 200 <= answer.code < 300:
            route, contact = rawsip.route_set(answer)
            self.ep.send(rawsip.ack_for(sent, answer, route, contact))
        else:
            self.ep.send(rawsip.ack_for(sent, answer))
        return sent, answer

    def bye_to(self, sip, cluster, node: str, sent: bytes, answer: rawsip.Reply
               ) -> rawsip.Reply:
        """The BYE, along the call's route set (node A's Record-Route), sent to `node`."""
        s = cluster.settings(node)
        self.ep.target = (s.sip_address, s.sip_port)
        route, contact = rawsip.route_set(answer)
        return self.final(sip, rawsip.bye_for(sent, answer, route, contact), "the BYE's answer")

    def close(self) -> None:
        self.ep.close()


def xdrs(records, account: str) -> list[tuple]:
    return records.query("SELECT call_id, leg, sip_code, duration, amount FROM xdrs "
                         "WHERE account_id = %s ORDER BY id", account)


@pytest.fixture
def node_a_back(cluster):
    """A test that kills node A's Kamailio has it back, in the cluster, when it ends."""
    yield
    if "kamailio" not in cluster.a.procs:
        cluster.restart_kamailio_a()


@pytest.mark.parametrize("a_dies", [False, True], ids=["a-alive", "a-dead"])
def test_a_call_set_up_on_a_and_ended_on_b_is_billed_once(
        cluster, tg, sip, gateway, records, calls_end, node_a_back, a_dies):
    opening = Decimal("0.50")                  # 50 s; the call holds all of it
    client = tenants.straight_out(tg, balance=str(opening))
    caller = RawCaller(cluster, NODE_A, "127.0.0.61", client.account, client.password)
    held = keyspace.reservations("account", client.account)
    client_redis = redis.Redis(port=tg.settings.redis_port, decode_responses=True)
    try:
        sent, answer = caller.call(sip, TOLL)
        assert answer.code == 200, str(answer)
        answered = time.monotonic()
        out = gateway.wait_incoming(15)
        sip.wait_for(lambda: out.confirmed, 10, "the gateway's leg confirmed")
        sip.wait_for(lambda: 4 in cluster.dialog_states(NODE_B, caller.call_id), 10,
                     "node B knowing the confirmed dialog (DMQ)")
        assert caller.call_id in client_redis.hgetall(held)
        # the funds the call holds are held for node B too: nothing left to call with
        other = phone_at(cluster, sip, NODE_B, "client-b", client)
        refused = other.call(f"sip:{TOLL}@{cluster.target(NODE_B)}")
        sip.wait_for(lambda: refused.disconnected, 15, "node B's answer to a second call")
        assert refused.last_code == 402
        if a_dies:
            cluster.kill_kamailio(NODE_A)
        sip.wait_for(lambda: time.monotonic() - answered >= 2, 5, "two seconds of talk")
        shortest = int(time.monotonic() - answered)
        bye = caller.bye_to(sip, cluster, NODE_B, sent, answer)
        longest = int(time.monotonic() - answered) + 1
        assert bye.code == 200, str(bye)
        sip.wait_for(lambda: out.disconnected, 10, "node B relaying the BYE to the gateway")
        rows: list[tuple] = []

        def billed() -> bool:
            rows[:] = xdrs(records, client.account)
            return bool(rows) and records.written_out()
        wait_until(billed, 30, "the call's xDR")
        wait_until(lambda: not client_redis.hgetall(held), 10, "the reservation released")
        if not a_dies:
            wait_until(lambda: 4 not in cluster.dialog_states(NODE_A, caller.call_id), 10,
                       "node A learning the dialog ended (DMQ)")
        # the call's row of the dialog table the nodes share is gone: a restarted node A
        # does not take it up again
        wait_until(lambda: not records.query("SELECT 1 FROM dialog WHERE callid = %s",
                                             caller.call_id), 10, "the dialog row deleted")
        wait_until(records.written_out, 20, "every xDR event written")
    finally:
        caller.close()
        client_redis.close()
    rows = xdrs(records, client.account)
    assert len(rows) == 1, rows
    call_id, leg, code, duration, amount = rows[0]
    assert (call_id, leg, code) == (caller.call_id, "out", 200)
    assert shortest <= duration <= longest, (shortest, duration, longest)
    assert amount == duration * PER_SECOND
    assert records.balance(client.account) == opening - amount
    # what is left pays for the next call through B at once
    again = other.call(f"sip:{TOLL}@{cluster.target(NODE_B)}")
    sip.wait_for(lambda: again.confirmed or again.disconnected, 15, "the next call's answer")
    assert again.confirmed, again.last_code


def test_a_personalized_call_through_node_b_goes_through_b_s_ivr(
        cluster, tg, sip, gateway, records, calls_end):
    """Mark's phone, registered to node B, dials a toll number: B's IVR asks for the code,
    Rachel's 4545 is keyed, the toll leg goes out through B; two xDRs as on one node."""
    office = tenants.office(tg)
    node_b = NodeB(cluster)
    mark = phone_at(cluster, sip, NODE_B, "mark-b", office.mark)
    call = dial(node_b, mark, TOLL)
    leg = enter_code_and_reach_gateway(node_b, sip, gateway, call, office.rachel.pin)
    talking(sip, call, leg)
    call.hangup_with()
    sip.wait_for(lambda: leg.disconnected, 10, "BYE reaching the gateway")
    rows = records.settled_xdrs(call.call_id, 2)
    assert [(leg_, account) for leg_, account, *_ in rows] == [
        ("ivr", office.mark.id), ("toll", office.rachel.id)]
    assert f"[{call.call_id}]" in node_b.log("ivr")
    assert f"[{call.call_id}]" not in tg.log("ivr")


def test_max_calls_count_the_calls_of_every_node(cluster, tg, sip, gateway, records, calls_end):
    client = tenants.straight_out(tg, client={"max_calls": 1})
    on_a = phone_at(cluster, sip, NODE_A, "client-a", client)
    on_b = phone_at(cluster, sip, NODE_B, "client-b", client)
    first = on_a.call(f"sip:{TOLL}@{cluster.target(NODE_A)}")
    out = gateway.wait_incoming(15)
    sip.wait_for(lambda: first.confirmed, 10, "the first call answered on node A")
    second = on_b.call(f"sip:{TOLL}@{cluster.target(NODE_B)}")
    sip.wait_for(lambda: second.disconnected, 10, "node B refusing the second call")
    assert (second.last_code, second.last_reason) == (403, "Max calls reached")
    assert not first.disconnected
    first.hangup_with()
    sip.wait_for(lambda: out.disconnected, 10, "the BYE reaching the gateway")
    records.settled_xdrs(first.call_id, 1)
    third = on_b.call(f"sip:{TOLL}@{cluster.target(NODE_B)}")   # the slot is free again
    sip.wait_for(lambda: third.confirmed, 15, "a call through node B after the first ended")
    assert len(gateway.incoming) == 2


def test_a_call_left_on_a_dead_node_is_ended_and_billed_at_its_cap_by_the_other(
        cluster, tg, sip, gateway, records, calls_end, node_a_back):
    """Node A dies with a call up and nobody hangs up: node B's copy of the dialog times
    out at the call's authorized maximum; B sends both sides a BYE and bills the call,
    once, at the cap."""
    client = tenants.straight_out(tg, balance="0.05")     # affords 5 s
    held = keyspace.reservations("account", client.account)
    caller = RawCaller(cluster, NODE_A, "127.0.0.62", client.account, client.password)
    client_redis = redis.Redis(port=tg.settings.redis_port, decode_responses=True)
    try:
        sent, answer = caller.call(sip, TOLL)
        assert answer.code == 200, str(answer)
        out = gateway.wait_incoming(15)
        sip.wait_for(lambda: out.confirmed, 10, "the gateway's leg confirmed")
        sip.wait_for(lambda: 4 in cluster.dialog_states(NODE_B, caller.call_id), 10,
                     "node B knowing the confirmed dialog (DMQ)")
        cluster.kill_kamailio(NODE_A)
        sip.wait_for(lambda: out.disconnected, 30, "node B's BYE to the gateway at the cap")
        sip.wait_for(lambda: any(r.raw.startswith(b"BYE ") for r in caller.ep.poll()), 10,
                     "node B's BYE to the caller")
        sip.wait_for(lambda: xdrs(records, client.account) and records.written_out(), 30,
                     "node B billing the call at its cap")
        wait_until(lambda: not client_redis.hgetall(held), 10, "the reservation released")
    finally:
        caller.close()
        client_redis.close()
    rows = xdrs(records, client.account)
    assert len(rows) == 1, rows
    call_id, leg, code, duration, amount = rows[0]
    assert (call_id, leg, code, duration, amount) == (caller.call_id, "out", 200, 5,
                                                     Decimal("0.05"))
    assert records.balance(client.account) == 0
    assert records.query("SELECT reason FROM xdrs WHERE call_id = %s", caller.call_id) == [
        ("Authorized maximum reached",)]
