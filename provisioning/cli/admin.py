"""tollgate migrate and tollgate resync: schema upgrades and the Redis rebuild."""
from __future__ import annotations

from typing import Any, TextIO

from provisioning import loader
from provisioning.cli.common import EXIT_OK, EXIT_REDIS, Context, emit
from provisioning.migrate import migrate


class ProgressBar:
    """A one-line bar on stderr, redrawn only when the percentage moves."""

    def __init__(self, stream: TextIO, width: int = 40):
        self.stream, self.width, self.shown = stream, width, -1

    def __call__(self, done: int, total: int) -> None:
        percent = 100 if total <= 0 else min(100, done * 100 // total)
        if percent == self.shown:
            return
        self.shown = percent
        filled = self.width * percent // 100
        self.stream.write(f"\rresync [{'#' * filled}{'.' * (self.width - filled)}] "
                          f"{percent:3d}% {done}/{total} records")
        self.stream.flush()

    def close(self) -> None:
        if self.shown >= 0:
            self.stream.write("\n")


def run_migrate(ctx: Context, args: Any) -> int:
    applied = migrate(ctx.dsn)
    emit(ctx, {"applied": applied} if ctx.json else
         ("applied " + ", ".join(applied) if applied else "schema is up to date"))
    return EXIT_OK


def run_resync(ctx: Context, args: Any) -> int:
    """Rebuild Redis from PostgreSQL; Redis down means nothing could be done (exit 3)."""
    import redis

    bar = ProgressBar(ctx.err)
    try:
        client = ctx.redis()
        with ctx.pg() as conn:
            written = loader.resync(conn, client, progress=bar)
        client.close()
    except redis.RedisError as exc:
        bar.close()
        ctx.err.write(f"tollgate: Redis is unreachable ({exc}); nothing was resynced\n")
        return EXIT_REDIS
    bar.close()
    emit(ctx, {"keys": written} if ctx.json else f"resynced {written} keys")
    return EXIT_OK


def register(sub: Any) -> None:
    """Add `tollgate migrate` and `tollgate resync`."""
    sub.add_parser("migrate", help="apply pending schema migrations").set_defaults(func=run_migrate)
    sub.add_parser("resync", help="rebuild Redis from PostgreSQL").set_defaults(func=run_resync)
