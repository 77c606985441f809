"""PostgreSQL's work per call: what the dialog module's write-through and the xDR writer
cost PostgreSQL for each call, counted rather than guessed.

Starts the cps bench's stack and tenant (`bench/bench_cps.py`), places `--calls` calls at
`--rate` calls/s (warm-up excluded), waits until every xDR is billed, then prints per
call: commits (`pg_stat_database`), rows inserted, updated and deleted per table
(`pg_stat_user_tables`) and the CPU time of the cluster's processes (`/proc`).
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import psycopg

from bench import bench_cps as cps
from tests.servers import kill_group

TICK = os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds(postmaster: int) -> float:
    """User + system CPU of the postmaster and its live children."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue  # gone meanwhile
        fields = stat.rsplit(")", 1)[1].split()
        if int(entry) == postmaster or int(fields[1]) == postmaster:
            total += int(fields[11]) + int(fields[12])
    return total / TICK


def postmaster_of(dsn: str) -> int:
    """The cluster's postmaster: the parent of a backend."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    return int(Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()[1])


def counters(dsn: str) -> tuple[dict[str, tuple[int, int, int]], int]:
    """Row operations per table and commits so far."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        tables = {row[0]: (row[1], row[2], row[3]) for row in conn.execute(
            "SELECT relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables")}
        commits = conn.execute("SELECT sum(xact_commit) FROM pg_stat_database").fetchone()[0]
    return tables, int(commits)


def settle() -> None:
    """pg_stat counters reach the views after the backends report them (<= 1 s)."""
    time.sleep(1.5)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench pgwork")
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--rate", type=int, default=150)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-pgwork-"))
    print(f"logs in {work}")
    stack = cps.make_stack()
    gateway = None
    try:
        stack.start()
        cps.provision(stack, work)
        callers = cps.callers_csv(work)
        gateway = cps.gateway(stack, work)
        cps.run_calls(stack.sip_target, 20, 1, callers, work / "warm")
        cps.drained(stack)
        settle()
        dsn = stack.pg.dsn()
        postmaster = postmaster_of(dsn)
        before, commits_before = counters(dsn)
        cpu_before = postgres_cpu_seconds(postmaster)
        step = cps.run_calls(stack.sip_target, args.rate, args.calls / args.rate, callers,
                             work / "run")
        cps.drained(stack)
        settle()
        after, commits_after = counters(dsn)
        cpu = postgres_cpu_seconds(postmaster) - cpu_before
        calls = max(step.ok, 1)
        print(f"{step.ok}/{step.calls} calls ok at {args.rate}/s; per call: "
              f"{(commits_after - commits_before) / calls:.2f} commits, "
              f"PostgreSQL CPU {cpu * 1000 / calls:.3f} ms")
        for table in sorted(after):
            delta = [(a - b) / calls for a, b in zip(after[table], before.get(table, (0, 0, 0)))]
            if any(delta):
                print(f"  {table:22s} insert {delta[0]:.2f}  update {delta[1]:.2f}  "
                      f"delete {delta[2]:.2f}")
    finally:
        if gateway:
            kill_group(gateway)
        stack.stop()


if __name__ == "__main__":
    main()
