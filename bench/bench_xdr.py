"""xDR writer benchmarks (printed, never asserted): rows/s from a pre-filled stream with 1
and 2 writer processes, lag p99 under live traffic, catch-up after a PostgreSQL outage.

`python -m bench xdr [--events 1000000] [--writers 1,2] [--outage 600] ...`: a private
PostgreSQL and redis-server (tests.servers), a seeded tenant (thousands of debit and
credit accounts in 50 clients, a tariff of --prefixes destinations), and
`python -m provisioning.xdr_writer` processes exactly as deployed. Progress and lag come
from the consumer group (XINFO GROUPS, XPENDING): an entry counts as written when it is
acked, i.e. after its transaction committed.
"""
from __future__ import annotations

import argparse
import bisect
import cProfile
import io
import os
import pstats
import random
import resource
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import msgpack
import psycopg
import redis

from provisioning.migrate import migrate
from provisioning.xdr_writer import GROUP, STREAM, XdrWriter
from tests.servers import PostgresServer, RedisServer, kill_group

ROOT = Path(__file__).resolve().parents[1]
CLIENTS = 50
SETUP = 1795300000
LEGS = ("toll",) * 25 + ("out",) * 35 + ("in",) * 20 + ("onnet",) * 15 + ("ivr",) * 5
TICK = 0.01        # the live producer sends every 10 ms
SAMPLE = 0.02      # the monitor reads the group every 20 ms


def seed(dsn: str, accounts: int, prefixes: int, rng: random.Random) -> list[str]:
    """A tenant: CLIENTS clients, `accounts` accounts (even: debit, odd: credit), a product
    whose '' code rates by a tariff of `prefixes` destinations and whose IN code by one
    flat rate. Returns the tariff's prefixes."""
    migrate(dsn)
    deck: set[str] = set()
    while len(deck) < prefixes:
        deck.add(str(rng.randint(1, 9)) + "".join(rng.choice("0123456789")
                                                    for _ in range(rng.randint(1, 7))))
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO customers (name, currency, timezone) SELECT 'bench ' || g, "
                     "'USD', (ARRAY['UTC','America/Vancouver','Europe/Prague'])[1 + g %% 3] "
                     "FROM generate_series(1, %s) g", (CLIENTS,))
        conn.execute("INSERT INTO tariffs (name, currency) VALUES ('out', 'USD'), ('in', 'USD')")
        with conn.cursor().copy("COPY rates (tariff_id, prefix, price_first, price_next, "
                                "interval_first, interval_next, connect_fee) FROM STDIN") as copy:
            for prefix in sorted(deck):
                price = Decimal(rng.randint(1, 900)) / 1000
                copy.write_row((1, prefix, price, price, rng.choice((1, 30, 60)),
                                rng.choice((1, 6, 60)), rng.choice((0, Decimal("0.05")))))
            copy.write_row((2, "", Decimal("0.01"), Decimal("0.01"), 60, 60, 0))
        conn.execute("INSERT INTO products (name, currency) VALUES ('bench', 'USD')")
        conn.execute("INSERT INTO rating_entries (product_id, access_code, tariff_id) "
                     "VALUES (1, '', 1), (1, 'IN', 2)")
        conn.execute("INSERT INTO ids (id, kind) SELECT 'b' || g, 'account' "
                     "FROM generate_series(1, %s) g", (accounts,))
        conn.execute("INSERT INTO accounts (id, customer_id, product_id, billing_model, balance)"
                     " SELECT 'b' || g, 1 + g %% %s, 1,"
                     " CASE WHEN g %% 2 = 0 THEN 'debit' ELSE 'credit' END,"
                     " CASE WHEN g %% 2 = 0 THEN 1000000 ELSE 0 END"
                     " FROM generate_series(1, %s) g", (CLIENTS, accounts))
        conn.execute("VACUUM ANALYZE")
    return sorted(deck)


class Events:
    """Mixed xDR events, msgpack-encoded as Kamailio emits them (billing.xdr wire map)."""

    def __init__(self, accounts: int, deck: list[str], rng: random.Random):
        self.accounts, self.deck, self.rng, self.serial = accounts, deck, rng, 0

    def next(self) -> bytes:
        rng, self.serial = self.rng, self.serial + 1
        n = rng.randint(1, self.accounts)
        leg = rng.choice(LEGS)
        cld = rng.choice(self.deck)
        cld += "".join(rng.choice("0123456789") for _ in range(max(0, 11 - len(cld))))
        setup = SETUP + self.serial // 100
        answered = rng.random() >= 0.10
        talk = rng.randint(1, 600)
        return msgpack.packb({
            "call_id": f"bench-{self.serial}", "session_id": f"s-{self.serial}", "leg": leg,
            "account": f"b{n}", "customer_id": 1 + n % CLIENTS, "cli": f"b{n}",
            "cld": f"b{rng.randint(1, self.accounts)}" if leg == "onnet" else cld,
            "access_code": "IN" if leg in ("in", "ivr") else "", "setup_ts": f"{setup}.250",
            "connect_ts": f"{setup + 3}.500" if answered else "0",
            "end_ts": f"{setup + 3 + talk}.750" if answered else f"{setup + 20}.000",
            "sip_code": 200 if answered else 486, "reason": "" if answered else "Busy Here",
            "node": "bench", "v": 1}, use_bin_type=True)


def fill(client: redis.Redis, events: Events, count: int) -> float:
    """XADD `count` events in pipelined chunks; returns the seconds it took."""
    started = time.monotonic()
    for start in range(0, count, 10_000):
        pipe = client.pipeline(transaction=False)
        for _ in range(min(10_000, count - start)):
            pipe.xadd(STREAM, {"m": events.next()})
        pipe.execute()
    return time.monotonic() - started


def reset(dsn: str, client: redis.Redis) -> None:
    """Empty xDRs, operations and days; a new stream and group."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("TRUNCATE xdrs, balance_operations, daily_usage CASCADE")
        conn.execute("UPDATE accounts SET balance = CASE WHEN billing_model = 'debit'"
                     " THEN 1000000 ELSE 0 END, first_use = NULL")
        conn.execute("UPDATE customers SET balance = 0")
    client.delete(STREAM)
    client.xgroup_create(STREAM, GROUP, id="0", mkstream=True)


def writer(dsn: str, redis_port: int, name: str, log: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "TOLLGATE_REDIS_PORT": str(redis_port), "PYTHONPATH": str(ROOT)}
    env.pop("TOLLGATE_CONFIG", None)
    return subprocess.Popen([sys.executable, "-m", "provisioning.xdr_writer", "--dsn", dsn,
                             "--consumer", name, "--block-ms", "100", *args],
                            cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=open(log, "ab"))


def group(client: redis.Redis) -> dict:
    for info in client.xinfo_groups(STREAM):
        if info["name"] in (GROUP, GROUP.encode()):
            return info
    return {}


def cpu_seconds(pids: list[int], reaped: bool = False) -> float:
    """utime + stime of the processes (`reaped`: of the first one's exited children too)."""
    total = 0
    for n, pid in enumerate(pids):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(f) for f in fields[11:15 if reaped and n == 0 else 13])
    return total / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    """CPU seconds of this process's children that exited and were waited for."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def postgres_pids(server: PostgresServer) -> list[int]:
    master = int((server.data / "postmaster.pid").read_text().split()[0])
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            if ppid == master:
                children.append(int(entry.name))
    return [master, *children]


def throughput(pg: PostgresServer, dsn: str, client: redis.Redis, redis_pid: int,
               events: Events, args: argparse.Namespace, writers: int, logs: Path) -> None:
    reset(dsn, client)
    filled = fill(client, events, args.events)
    print(f"  {writers} writer(s): stream pre-filled with {args.events:,} events "
          f"in {filled:.1f} s", flush=True)
    pg_before = cpu_seconds(postgres_pids(pg), reaped=True)
    redis_before, writers_before = cpu_seconds([redis_pid]), children_cpu()
    procs = [writer(dsn, client.connection_pool.connection_kwargs["port"], f"w{n}",
                    logs / f"writer-{writers}-{n}.log", "--batch", str(args.batch))
             for n in range(writers)]
    started = time.monotonic()
    first = done = None
    try:
        while True:
            info = group(client)
            acked = (info.get("entries-read") or 0) - (info.get("pending") or 0)
            now = time.monotonic()
            if first is None and acked > 0:
                first = (now, acked)
            if acked >= args.events:
                done = now
                break
            if all(p.poll() is not None for p in procs):
                break
            time.sleep(0.2)
    finally:
        for proc in procs:
            kill_group(proc)
    writer_cpu = children_cpu() - writers_before
    time.sleep(0.5)   # the writers' backends exit and are reaped by the postmaster
    pg_cpu = cpu_seconds(postgres_pids(pg), reaped=True) - pg_before
    redis_cpu = cpu_seconds([redis_pid]) - redis_before
    if done is None or first is None:
        print(f"  {writers} writer(s): did not finish (see {logs})")
        return
    elapsed = done - started
    steady = (args.events - first[1]) / max(done - first[0], 1e-9)
    with psycopg.connect(dsn) as conn:
        rows, amount = conn.execute("SELECT count(*), coalesce(sum(amount), 0) FROM xdrs"
                                    ).fetchone()
        debits = conn.execute("SELECT coalesce(sum(abs(amount)), 0) FROM balance_operations"
                              " WHERE account_id IS NOT NULL").fetchone()[0]
    print(f"  {writers} writer(s): {rows:,} xDRs in {elapsed:.1f} s from start = "
          f"{rows / elapsed:,.0f} rows/s; {steady:,.0f} rows/s from the first commit; "
          f"CPU s per 1k xDRs: writers {1000 * writer_cpu / rows:.3f}, "
          f"PostgreSQL {1000 * pg_cpu / rows:.3f}, Redis {1000 * redis_cpu / rows:.3f}; "
          f"sum(xdrs.amount) {amount} == sum(account operations) {debits}: "
          f"{'yes' if amount == debits else 'NO'}", flush=True)


class Live:
    """900 events/s (300 CPS x 3 legs) XADDed every TICK; a monitor samples how far the
    group has acked. An entry's lag is from its XADD to the first sample that has it acked."""

    def __init__(self, client: redis.Redis, events: Events, per_second: int):
        self.client, self.events, self.per_second = client, events, per_second
        self.sent: list[tuple[tuple[int, int], float]] = []
        self.samples: list[tuple[tuple[int, int], float]] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.produce, daemon=True),
                        threading.Thread(target=self.monitor, daemon=True)]

    def start(self) -> "Live":
        for thread in self.threads:
            thread.start()
        return self

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(10)

    def produce(self) -> None:
        client = redis.Redis(port=self.client.connection_pool.connection_kwargs["port"])
        start, sent = time.monotonic(), 0
        while not self.stop.is_set():
            due = int((time.monotonic() - start) * self.per_second) - sent
            if due > 0:
                pipe = client.pipeline(transaction=False)
                for _ in range(due):
                    pipe.xadd(STREAM, {"m": self.events.next()})
                now = time.time()
                self.sent.extend((_id(entry), now) for entry in pipe.execute())
                sent += due
            self.stop.wait(TICK)

    def monitor(self) -> None:
        client = redis.Redis(port=self.client.connection_pool.connection_kwargs["port"])
        while not self.stop.is_set():
            try:
                info, pending = group(client), client.xpending(STREAM, GROUP)
            except redis.RedisError:
                continue
            now = time.time()
            if pending["pending"]:
                ms, seq = _id(pending["min"])
                upto = (ms, seq - 1) if seq else (ms - 1, 2**63)
            else:
                upto = _id(info.get("last-delivered-id") or b"0-0")
            if not self.samples or upto > self.samples[-1][0]:
                self.samples.append((upto, now))
            self.stop.wait(SAMPLE)

    def acked_at(self, entry: tuple[int, int]) -> float | None:
        """When the monitor first saw `entry` acked."""
        at = bisect.bisect_left([upto for upto, _ in self.samples], entry)
        return self.samples[at][1] if at < len(self.samples) else None

    def drained_at(self, after: float, within: float = 0.5) -> float | None:
        """The first sample after `after` at which everything sent more than `within` s
        before it was acked (the group's lag back to live traffic's)."""
        sent = list(self.sent)
        times = [at for _, at in sent]
        for upto, at in list(self.samples):
            if at < after:
                continue
            last = bisect.bisect_right(times, at - within) - 1
            if last >= 0 and sent[last][0] <= upto:
                return at
        return None

    def lags(self, since: float = 0.0, until: float = float("inf")) -> list[float]:
        """Lags (s) of the entries sent in [since, until) that were acked."""
        uptos = [upto for upto, _ in self.samples]
        out = []
        for entry, sent in self.sent:
            if since <= sent < until:
                at = bisect.bisect_left(uptos, entry)
                if at < len(uptos):
                    out.append(self.samples[at][1] - sent)
        return out


def _id(raw: bytes | str) -> tuple[int, int]:
    text = raw.decode() if isinstance(raw, bytes) else raw
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else float("nan")


def live_lag(dsn: str, client: redis.Redis, events: Events, args: argparse.Namespace,
             logs: Path) -> None:
    reset(dsn, client)
    proc = writer(dsn, client.connection_pool.connection_kwargs["port"], "live",
                  logs / "writer-live.log", "--batch", str(args.batch))
    live = Live(client, events, args.rate).start()
    try:
        time.sleep(args.live)
    finally:
        live.finish()
        kill_group(proc)
    if not live.sent:
        print("  live: nothing was sent")
        return
    lags = live.lags(since=live.sent[0][1] + 5)   # the first 5 s include the writer's start
    print(f"  live {args.rate} events/s for {args.live} s, 1 writer: {len(live.sent):,} sent; "
          f"lag XADD -> XACK p50 {1000 * percentile(lags, 50):.0f} ms, "
          f"p99 {1000 * percentile(lags, 99):.0f} ms, max {1000 * max(lags):.0f} ms "
          f"(sampled every {1000 * SAMPLE:.0f} ms)", flush=True)


def outage(pg: PostgresServer, dsn: str, client: redis.Redis, events: Events,
           args: argparse.Namespace, logs: Path) -> None:
    reset(dsn, client)
    proc = writer(dsn, client.connection_pool.connection_kwargs["port"], "outage",
                  logs / "writer-outage.log", "--batch", str(args.batch))
    live = Live(client, events, args.rate).start()
    try:
        time.sleep(5)
        pg.stop()
        down = time.time()
        time.sleep(args.outage)
        backlog = len(live.sent)
        pg.start()
        up = time.time()
        last = live.sent[-1][0]
        deadline = time.monotonic() + max(600.0, args.outage)
        while live.drained_at(up) is None and time.monotonic() < deadline:
            time.sleep(0.5)
        backlog_at, caught = live.acked_at(last), live.drained_at(up)
        time.sleep(10)   # then live traffic again: its lag once caught up
    finally:
        live.finish()
        kill_group(proc)
    if caught is None or backlog_at is None:
        print(f"  outage of {args.outage} s: not caught up (see {logs})")
        return
    after = live.lags(since=caught + 1)
    print(f"  PostgreSQL down {up - down:.0f} s under {args.rate} events/s "
          f"({backlog:,} events sent by then): the events sent while it was down acked "
          f"{backlog_at - up:.1f} s after it was back, lag back under 0.5 s after "
          f"{caught - up:.1f} s (the writer's retry backoff is at most 5 s); lag p99 in the "
          f"next 10 s {1000 * percentile(after, 99):.0f} ms", flush=True)


def profile(dsn: str, client: redis.Redis, events: Events, args: argparse.Namespace) -> None:
    """One writer in this process under cProfile: where a batch's time goes."""
    reset(dsn, client)
    count = min(args.events, 200_000)
    fill(client, events, count)
    w = XdrWriter(dsn, client, "profiled", batch=args.batch, block_ms=50)
    profiler = cProfile.Profile()
    started = time.monotonic()
    profiler.runcall(w.run, threading.Event(), True)
    elapsed = time.monotonic() - started
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
    print(f"  profile: {count:,} events in {elapsed:.1f} s in-process under cProfile")
    print("\n".join("    " + line for line in out.getvalue().splitlines()[:45]))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=sys.argv[0], description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="pre-filled events")
    parser.add_argument("--accounts", type=int, default=5000)
    parser.add_argument("--prefixes", type=int, default=20_000, help="destinations of the tariff")
    parser.add_argument("--writers", default="1,2", help="writer process counts to run")
    parser.add_argument("--batch", type=int, default=2000, help="the writers' --batch")
    parser.add_argument("--rate", type=int, default=900,
                        help="live events/s (300 CPS x 3 legs)")
    parser.add_argument("--live", type=int, default=60, help="seconds of live traffic")
    parser.add_argument("--outage", type=int, default=600,
                        help="seconds PostgreSQL stays down (0: skip)")
    parser.add_argument("--profile", action="store_true",
                        help="also profile one in-process writer on up to 200k events")
    parser.add_argument("--only", default="throughput,live,outage",
                        help="phases to run (throughput, live, outage)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    rng = random.Random(12)
    pg, rs = PostgresServer().start(), RedisServer().start()
    logs = Path(pg.dir)
    try:
        client = redis.Redis(port=rs.port)
        started = time.monotonic()
        deck = seed(pg.dsn(), args.accounts, args.prefixes, rng)
        print(f"xDR writer: {args.accounts:,} accounts (half debit, half credit) in "
              f"{CLIENTS} clients, a tariff of {len(deck):,} prefixes, batches of up to "
              f"{args.batch}; PostgreSQL 15 as tests.servers runs it (fsync off); "
              f"seeded in {time.monotonic() - started:.1f} s; logs in {logs}", flush=True)
        events = Events(args.accounts, deck, rng)
        if args.profile:
            profile(pg.dsn(), client, events, args)
        phases = args.only.split(",")
        if "throughput" in phases:
            for count in (int(n) for n in args.writers.split(",")):
                throughput(pg, pg.dsn(), client, rs.proc.pid if rs.proc else 0, events, args,
                           count, logs)
        if "live" in phases:
            live_lag(pg.dsn(), client, events, args, logs)
        if "outage" in phases and args.outage > 0:
            outage(pg, pg.dsn(), client, events, args, logs)
    finally:
        rs.stop()
        pg.discard()


if __name__ == "__main__":
    main()
