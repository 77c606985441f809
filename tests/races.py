"""Two writers at the same moment against real PostgreSQL: each in its own connection and
transaction, released together by a barrier."""
from __future__ import annotations

import threading
from collections.abc import Callable

import psycopg

from provisioning.validate import BadInput


def at_once(dsn: str, *writes: Callable[[psycopg.Connection], object]) -> list[str]:
    """Run the writes together; for each, "done" or the BadInput it was refused with,
    sorted."""
    gate = threading.Barrier(len(writes))
    outcomes: list[str] = []

    def run(write: Callable[[psycopg.Connection], object]) -> None:
        with psycopg.connect(dsn) as conn:
            try:
                with conn.transaction():
                    gate.wait(5)
                    write(conn)
                    outcomes.append("done")
            except BadInput as exc:
                outcomes.append(str(exc))
    racers = [threading.Thread(target=run, args=(write,)) for write in writes]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(20)
    return sorted(outcomes)
