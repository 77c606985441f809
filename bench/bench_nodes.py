"""Calls per second through one tollgate node and through two (docs/NODES.md), one run.

`python -m bench nodes` starts the two-node cluster of tests/cluster.py (two Kamailio + IVR
nodes sharing Redis, PostgreSQL, rtpengine and the xDR writer, DMQ between them),
provisions bench_cps's tenant (debit accounts, no IVR), and at each offered rate runs
bench_cps's paid call (digest auth, rating, the Redis reservation, an xDR) first against
node A alone, then against both nodes at once, the rate split between them (A gets the
odd call). A side stops climbing after a step that is not clean (bench_cps.Step.clean,
on each node's part, and no rtpengine error in either node's log). After each step the
xDR writer is drained and PostgreSQL must hold exactly one xDR per answered call, each
call's charge as one balance operation. CPU per call comes from /proc, per process group.

Both nodes run on the same machine as everything else: this measures what a second node
costs and whether the cluster's shared state (DMQ, one Redis, one writer) holds at rate,
not a cluster's capacity: on N shared cores two nodes cannot be faster than one.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg

from bench.bench_cps import (
    RTP_BASE,
    RTP_PORTS,
    SHORTFALL,
    Media,
    Step,
    callers_csv,
    cpu_ticks,
    gateway,
    provision,
    redis_client,
    run_calls,
    writer_backlog,
)
from tests.cluster import NODE_A, NODE_B, Cluster
from tests.records import wait_until
from tests.servers import kill_group

RATES = (50, 100, 150, 200, 250, 300, 400, 500)
SECONDS = 5
RETRIES = 1          # a step that is not clean is run once more (the VM is shared)
BUDGET_S = 240       # for the whole ramp; the cluster's start and stop come on top
DRAIN_S = 40         # for a step's xDRs to be billed after its last call
ONE, TWO = "one node", "two nodes"


@dataclass
class Billing:
    """What PostgreSQL holds for one step's calls once the writer has drained."""
    xdrs: int = 0                   # of answered calls (a 2xx code)
    calls: int = 0                  # distinct Call-IDs among them
    paid: int = 0                   # of them with an amount
    charges: int = 0                # balance operations pointing at them
    amount: Decimal = Decimal(0)    # sum of their amounts
    charged: Decimal = Decimal(0)   # sum of their charges (negative: a debit)
    unanswered: int = 0             # xDRs of calls that failed, apart

    def once(self, answered: int) -> bool:
        """Every answered call billed once: one xDR per call, each paid one charged once,
        for its amount."""
        return self.xdrs == answered == self.calls and self.charges == self.paid and \
            self.charged == -self.amount


@dataclass
class Result:
    """One step: one node's sipp run, or both nodes' runs side by side."""
    rate: int
    parts: dict[str, Step]
    media_errors: int = 0
    billing: Billing = field(default_factory=Billing)
    cpu: dict[str, float] = field(default_factory=dict)   # CPU seconds per process group

    @property
    def ok(self) -> int:
        return sum(s.ok for s in self.parts.values())

    @property
    def clean(self) -> bool:
        return all(s.clean for s in self.parts.values()) and self.media_errors == 0 \
            and self.billing.once(self.ok)

    def pct(self, p: float) -> float:
        merged = Step(self.rate, 0, 0, 0, 0.0,
                      [ms for s in self.parts.values() for ms in s.setup_ms], 0, Path())
        return merged.pct(p)

    def line(self) -> str:
        calls = sum(s.calls for s in self.parts.values())
        failed = sum(s.failed for s in self.parts.values())
        retrans = sum(s.retrans for s in self.parts.values())
        achieved = sum(s.achieved for s in self.parts.values())
        b = self.billing
        billed = "once" if b.once(self.ok) else "NOT ONCE"
        return (f"{self.ok}/{calls} ok, {failed} failed, {achieved:6.1f}/s achieved, "
                f"{retrans} retrans, setup p50 {self.pct(50):.0f} ms p99 {self.pct(99):.0f} ms, "
                f"{self.media_errors} rtpengine errors, {b.xdrs} xDRs/{b.charges} charges "
                f"for {self.ok} answered: billed {billed}"
                + (f" ({b.unanswered} xDRs of failed calls)" if b.unanswered else "")
                + ("" if self.clean else "  [not clean]"))


class NodesMedia(Media):
    """bench_cps.Media over both nodes' Kamailio logs and control sockets."""

    def __init__(self, cluster: Cluster):
        self.logs = {NODE_A: cluster.a.dir / "kamailio.log",
                     NODE_B: cluster.a.dir / f"{NODE_B}-kamailio.log"}
        self.ctls = [Path(cluster.ctl(n).removeprefix("unix:")) for n in (NODE_A, NODE_B)]
        self.marks = {}
        self.warned = set()


def make_cluster() -> Cluster:
    """bench_cps.make_stack's rtpengine range (room for the bench's media), for node A's
    stack before it starts; node B copies A's settings."""
    cluster = Cluster()
    cluster.a.settings = dataclasses.replace(cluster.a.settings, rtp_port_min=RTP_BASE,
                                             rtp_port_max=RTP_BASE + RTP_PORTS - 1)
    return cluster


def process_groups(cluster: Cluster, gw: subprocess.Popen[bytes]) -> dict[str, list[int]]:
    """Every pid of each process group the bench reports."""
    procs = cluster.a.procs
    groups = {"kamailio A": _tree(procs["kamailio"].pid),
              "kamailio B": _tree(procs[f"{NODE_B}-kamailio"].pid),
              "xdr writer": _tree(procs["xdr-writer"].pid),
              "rtpengine": _tree(procs["rtpengine"].pid),
              "sipp gateway": _tree(gw.pid)}
    if cluster.a.redis.proc is not None:
        groups["redis"] = _tree(cluster.a.redis.proc.pid)
    pidfile = cluster.a.pg.data / "postmaster.pid"
    if pidfile.exists():
        groups["postgres"] = _tree(int(pidfile.read_text().split()[0]))
    return groups


def _tree(root: int) -> list[int]:
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        try:
            todo += [int(k) for k in
                     Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        except OSError:
            pass
    return pids


class Bench:
    """The cluster, its gateway and callers; runs one step at a time."""

    def __init__(self, cluster: Cluster, gw: subprocess.Popen[bytes], callers: Path, work: Path,
                 seconds: float):
        self.cluster, self.gw, self.callers, self.work = cluster, gw, callers, work
        self.seconds = seconds
        self.dsn = cluster.a.pg.dsn()
        self.redis = redis_client(cluster.a)
        self.media = NodesMedia(cluster)

    def step(self, side: str, rate: int, tries: int) -> Result:
        """Calls at `rate` (split A/B for two nodes), then the writer drained and the
        step's xDRs counted; CPU until then."""
        shares = {NODE_A: rate} if side == ONE else {NODE_A: (rate + 1) // 2,
                                                     NODE_B: rate // 2}
        self.media.enable()
        for node in (NODE_A, NODE_B):
            self.media.mark(node)
        mark = self._last_xdr()
        groups = process_groups(self.cluster, self.gw)
        before = cpu_ticks(groups)
        tag = "one" if side == ONE else "two"
        with ThreadPoolExecutor(len(shares)) as pool:
            runs = {node: pool.submit(run_calls, self.cluster.target(node), share,
                                      self.seconds, self.callers,
                                      self.work / f"{tag}-{rate}-{tries}-{node}")
                    for node, share in shares.items()}
            parts = {node: run.result() for node, run in runs.items()}
        result = Result(rate, parts)
        result.billing = self._billing(mark, result.ok, _call_ids(parts.values()))
        after = cpu_ticks(groups)
        hz = os.sysconf("SC_CLK_TCK")
        result.cpu = {k: (after[k] - before[k]) / hz for k in groups}
        result.media_errors = sum(self.media.errors(n) for n in (NODE_A, NODE_B))
        return result

    def query(self, sql: str, *args: object) -> tuple[Any, ...]:
        with psycopg.connect(self.dsn) as conn:
            row = conn.execute(sql, args).fetchone()
        assert row is not None
        return tuple(row)

    def written_out(self) -> bool:
        return bool(writer_backlog(self.redis) == 0)

    def _last_xdr(self) -> int:
        return int(self.query("SELECT coalesce(max(id), 0) FROM xdrs")[0])

    def _billing(self, mark: int, answered: int, call_ids: list[str]) -> Billing:
        """The step's xDRs (Call-IDs like `call_ids`) once the writer has billed them all:
        waits (up to DRAIN_S) for as many as calls answered and the stream written out."""
        mine = "x.id > %s AND x.call_id LIKE ANY(%s)"
        def billed() -> bool:
            done = self.query(f"SELECT count(*) FROM xdrs x WHERE {mine}", mark, call_ids)[0]
            return int(done) >= answered and self.written_out()
        try:
            wait_until(billed, DRAIN_S, "the step's xDRs, the stream written out", every=0.2)
        except TimeoutError as e:
            print(f"  {e}", flush=True)
        row = self.query(
            "SELECT count(*), count(DISTINCT x.call_id), count(*) FILTER (WHERE x.amount > 0), "
            "count(o.id), coalesce(sum(x.amount), 0), coalesce(sum(o.amount), 0) "
            "FROM xdrs x LEFT JOIN balance_operations o ON o.xdr_id = x.id "
            f"WHERE {mine} AND x.sip_code BETWEEN 200 AND 299", mark, call_ids)
        unanswered = self.query(f"SELECT count(*) FROM xdrs x WHERE {mine} "
                                "AND coalesce(x.sip_code, 0) NOT BETWEEN 200 AND 299",
                                mark, call_ids)[0]
        return Billing(int(row[0]), int(row[1]), int(row[2]), int(row[3]), Decimal(row[4]),
                       Decimal(row[5]), int(unanswered))


def _call_ids(steps: Iterable[Step]) -> list[str]:
    """LIKE patterns of the Call-IDs a step's sipp callers made: sipp's default Call-ID is
    `<call number>-<pid>@<address>` and its trace files are named after its pid, so a
    late xDR of an earlier step is not counted as this one's."""
    pids = {path.name.split("_")[-2] for step in steps for path in step.logs.glob("*_rtt.csv")}
    return [f"%-{pid}@%" for pid in sorted(pids)] or ["%"]


def ramp(bench: Bench, rates: list[int]) -> tuple[dict[str, int], dict[tuple[str, int], Result]]:
    """Each rate on one node then on two, until a side has a step that is not clean
    (run once more first); the highest clean rate of each side and every clean result."""
    best = {ONE: 0, TWO: 0}
    stopped: set[str] = set()
    results: dict[tuple[str, int], Result] = {}
    started = time.monotonic()
    for rate in rates:
        if len(stopped) == 2 or time.monotonic() - started > BUDGET_S:
            break
        for side in (ONE, TWO):
            if side in stopped:
                continue
            for tries in range(1, RETRIES + 2):
                result = bench.step(side, rate, tries)
                split = f"{rate}/s on A" if side == ONE else \
                    f"{(rate + 1) // 2}/s on A + {rate // 2}/s on B"
                print(f"  {side:9s} {rate:4d}/s offered ({split}): {result.line()}",
                      flush=True)
                if result.clean:
                    best[side] = rate
                    results[side, rate] = result
                    break
            else:
                stopped.add(side)
    return best, results


def report(best: dict[str, int], results: dict[tuple[str, int], Result],
           seconds: float) -> None:
    one, two = best[ONE], best[TWO]
    print()
    print(f"highest clean rate ({seconds:g} s steps of 0-500 ms paid calls; clean: no failed "
          f"call, no retransmission, >= {SHORTFALL:.0%} of the offered rate on each node, "
          "no rtpengine error, every answered call billed once; setup = first INVITE -> 200, "
          "in sipp's 4 ms clock ticks):")
    print(f"  one node (all calls to A)          {one:5d}/s")
    print(f"  two nodes (the rate split A + B)   {two:5d}/s")
    print(f"  two / one                          {two / one if one else float('nan'):5.2f}"
          "   (rates are totals: two nodes get half each)")
    common = min(one, two)
    if not common:
        print("  no rate was clean on both sides: no CPU per call to report")
        return
    print(f"CPU per call (ms) per process group at {common}/s, the highest rate clean on both "
          "(calls and their billing, until the writer drained):")
    groups = list(results[TWO, common].cpu)
    print("  " + " " * 10 + "".join(f"{g:>13s}" for g in groups) + f"{'all':>9s}")
    for side in (ONE, TWO):
        r = results[side, common]
        calls = max(1, r.ok)
        cells = "".join(f"{r.cpu[g] * 1000 / calls:13.2f}" for g in groups)
        print(f"  {side:10s}{cells}{sum(r.cpu.values()) * 1000 / calls:9.2f}")
    print(f"caveat: every process shares this machine's {os.cpu_count()} cores, so two nodes "
          "cannot be faster than one here; two / one near 1 says the second node and DMQ "
          "cost little, not that a cluster scales. \"one node\" is node A of the cluster: "
          "kamailio B still takes in each call's dialog over DMQ. The sipp callers' CPU is "
          "not counted.")


def _stop(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # run the finally blocks: no stray servers


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench nodes", description=__doc__)
    parser.add_argument("--rates", default=",".join(map(str, RATES)),
                        help="offered calls/s in total, in order (default %(default)s)")
    parser.add_argument("--seconds", type=float, default=SECONDS,
                        help="seconds of new calls per step (default %(default)s)")
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",") if r.strip()]
    signal.signal(signal.SIGTERM, _stop)
    work = Path(tempfile.mkdtemp(prefix="bench-nodes-"))
    print(f"logs in {work}", flush=True)
    cluster = make_cluster()
    gw = None
    try:
        cluster.start()
        print(f"cluster logs in {cluster.a.dir}", flush=True)
        provision(cluster.a, work)
        callers = callers_csv(work)
        gw = gateway(cluster.a, work)
        bench = Bench(cluster, gw, callers, work, args.seconds)
        for node in (NODE_A, NODE_B):   # warm caches, rtpengine, nonces on each node
            warm = run_calls(cluster.target(node), 20, 1, callers, work / f"warmup-{node}")
            if not warm.clean:
                print(f"  node {node} warm-up: {warm.ok}/{warm.calls} ok; see {warm.logs}")
        wait_until(bench.written_out, 60, "the warm-up billed")
        best, results = ramp(bench, rates)
        report(best, results, args.seconds)
    finally:
        if gw is not None:
            kill_group(gw)
        cluster.stop()


if __name__ == "__main__":
    main()
