"""The `tollgate` command: one module per entity group, layered settings, one-line errors.

Exit codes: 0 done, 1 failure (e.g. PostgreSQL unreachable), 2 bad input (nothing
written), 3 PostgreSQL committed but Redis could not be updated (run `tollgate resync`).
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

import psycopg

from provisioning.cli import (
    account,
    admin,
    alias,
    app,
    balance,
    customer,
    product,
    profile,
    recording,
    tariff,
    tenant,
    voicemail,
    voucher,
    xdr,
)
from provisioning.cli.common import EXIT_BAD_INPUT, EXIT_ERROR, Context, db_error
from provisioning.validate import BadInput
from tollgate import config

GROUPS = (customer, profile, account, alias, product, tariff, app, balance, recording, tenant,
          voucher, voicemail, admin, xdr)


class Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and exit code 2."""

    def error(self, message: str) -> Any:
        raise BadInput(message)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="tollgate",
                    description="Provision tollgate: PostgreSQL first, then Redis.")
    parser.add_argument("--config",
                        help="TOML settings file (default: $TOLLGATE_CONFIG, ./tollgate.toml)")
    parser.add_argument("--dsn", help="PostgreSQL DSN (overrides the pg_* settings)")
    parser.add_argument("--redis",
                        help="Redis URL redis://host:port/db (overrides the redis_* settings)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for group in GROUPS:
        group.register(sub)
    return parser


def load_settings(path: str | None) -> config.Settings:
    """tollgate.config.load() with --config standing in for $TOLLGATE_CONFIG for this call."""
    if path is None:
        return config.load()
    saved = os.environ.get("TOLLGATE_CONFIG")
    os.environ["TOLLGATE_CONFIG"] = path
    try:
        return config.load()
    finally:
        if saved is None:
            del os.environ["TOLLGATE_CONFIG"]
        else:
            os.environ["TOLLGATE_CONFIG"] = saved


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code (the console script exits with it)."""
    err = sys.stderr
    try:
        args = build_parser().parse_args(argv)
        settings = load_settings(args.config)
        ctx = Context(settings, args.dsn or settings.pg_dsn, args.redis, args.json, sys.stdout, err)
        return int(args.func(ctx, args))
    except SystemExit as exc:  # --help, --version
        return int(exc.code or 0)
    except BadInput as exc:
        err.write(f"tollgate: {exc}\n")
        return EXIT_BAD_INPUT
    except psycopg.errors.IntegrityError as exc:
        err.write(f"tollgate: {db_error(exc)}\n")
        return EXIT_BAD_INPUT
    except psycopg.errors.UndefinedTable:
        err.write("tollgate: the database has no tollgate schema; run `tollgate migrate`\n")
        return EXIT_ERROR
    except (psycopg.Error, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        err.write(f"tollgate: {first}\n")
        return EXIT_ERROR
