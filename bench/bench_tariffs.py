"""A 1M-prefix tariff in memory: read once before the fork and shared, vs read per worker.

One process reads the tariff from a private redis-server (tollgate.tariffs.TariffBook, as
Kamailio's main process does), then forks 4 workers that each rate numbers with it; the
workers' proportional set size (PSS, /proc/<pid>/smaps_rollup) shows what they share.
Then the same 4 workers each read the tariff themselves (what every worker did on its
first call before). Last, a one-prefix change published by the loader is applied in place
(the time to re-read one prefix vs the whole tariff). Printed, never asserted.
"""
from __future__ import annotations

import gc
import os
import random
import time

import msgpack
import redis

from provisioning.loader import Changes, publish
from tests.servers import RedisServer
from tollgate import keyspace
from tollgate.directory import Directory
from tollgate.tariffs import TariffBook

PREFIXES = 1_000_000
WORKERS = 4
TARIFF = 1
PRICES = ("0.0100", "0.0200", "0.0350", "0.0600", "0.1200", "0.2500")


def fill(client: redis.Redis) -> None:
    rng = random.Random(7)
    pipe = client.pipeline(transaction=False)
    seen: set[str] = set()
    n = 0
    while n < PREFIXES:
        prefix = str(rng.randrange(10**3, 10**12))[:rng.randint(4, 12)]
        if prefix in seen:
            continue
        seen.add(prefix)
        n += 1
        price = PRICES[n % len(PRICES)]
        pipe.hset(keyspace.rates(TARIFF), prefix, msgpack.packb({
            "prefix": prefix, "price_first": price, "price_next": price,
            "interval_first": 60, "interval_next": 60, "connect_fee": "0",
            "free_seconds": 0, "forbidden": False}))
        if n % 10_000 == 0:
            pipe.execute()
    pipe.execute()


def pss_kib(pid: int) -> int:
    for line in open(f"/proc/{pid}/smaps_rollup"):
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def rss_kib() -> int:
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def workers(port: int, book: TariffBook | None) -> tuple[list[int], float]:
    """Fork the workers; each rates 10,000 numbers (reading the tariff itself when no book
    is shared) and waits; returns their PSS in KiB and the slowest one's seconds."""
    pids, pipes = [], []
    for _ in range(WORKERS):
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                own = TariffBook(redis.Redis(port=port)) if book is None else \
                    book.attach(redis.Redis(port=port))
                start = time.perf_counter()
                rng = random.Random(os.getpid())
                for _ in range(10_000):
                    own.lookup(TARIFF, str(rng.randrange(10**11, 10**12)))
                os.write(write, f"{time.perf_counter() - start:.3f}\n".encode())
                time.sleep(3)  # measured meanwhile
            finally:
                os._exit(0)
        os.close(write)
        pids.append(pid)
        pipes.append(read)
    seconds = max(float(os.read(r, 64).decode()) for r in pipes)
    sizes = [pss_kib(pid) for pid in pids]
    for pid in pids:
        os.waitpid(pid, 0)
    return sizes, seconds


def main() -> None:
    server = RedisServer().start()
    try:
        client = redis.Redis(port=server.port)
        start = time.perf_counter()
        fill(client)
        print(f"{PREFIXES:,} prefixes written to Redis in {time.perf_counter() - start:.1f} s")
        gc.collect()
        before = rss_kib()
        book = TariffBook(client)
        start = time.perf_counter()
        count = book.preload()
        loaded = time.perf_counter() - start
        print(f"read once (the main process): {count:,} prefixes in {loaded:.1f} s, "
              f"+{(rss_kib() - before) / 1024:.0f} MiB")
        shared, first = workers(server.port, book)
        print(f"{WORKERS} workers sharing it: PSS {sum(shared) / 1024:.0f} MiB in all, "
              f"10,000 lookups each in {first:.2f} s (no read)")
        own, first = workers(server.port, None)
        print(f"{WORKERS} workers reading it each: PSS {sum(own) / 1024:.0f} MiB in all, "
              f"first 10,000 lookups (with the read) {first:.1f} s")
        directory = Directory(client, tariffs=book)
        directory.poll()
        changes = Changes()
        changes.hset(keyspace.rates(TARIFF), "4420712", msgpack.packb({
            "prefix": "4420712", "price_first": "0.0150", "price_next": "0.0150",
            "interval_first": 60, "interval_next": 60, "connect_fee": "0",
            "free_seconds": 0, "forbidden": False}))
        start = time.perf_counter()
        publish(client, changes)
        while (directory.rate(TARIFF, "442071234567") or {}).get("prefix") != "4420712":
            directory.poll()
        print(f"one prefix changed: applied in place {1000 * (time.perf_counter() - start):.1f} "
              f"ms after the write (tables read: {book.loads}, prefixes re-read: "
              f"{book.updates})")
    finally:
        server.stop()
