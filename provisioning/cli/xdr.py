"""tollgate xdr list|show: browse xDRs (billed legs) of an account, a customer or a session.

Legs are grouped by session (both legs of a paid call: the caller's IVR leg, then the
payer's toll leg), sessions newest first. Times are shown in the customer's timezone.
With --json: a list of leg objects, amounts as decimal strings.
"""
from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import psycopg

from provisioning.cli.common import Context, Row, fetch, fetch_one, id_by_name, read
from provisioning.validate import BadInput

DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")
# the time a leg is listed by: setup, else answer, else when the writer stored it
LEG_TIME = "coalesce(x.setup_time, x.connect_time, x.created_at)"
# legs of a session in call order: the IVR leg first, then by time
LEG_ORDER = "(x.leg <> 'ivr'), x.t, x.id"
COLUMNS = ("x.id, x.session_id, x.call_id, x.leg, x.account_id, x.customer_id, x.cli, x.cld,"
           " x.access_code, x.setup_time, x.connect_time, x.disconnect_time, x.duration,"
           " x.charged_seconds, x.amount, x.currency, x.rate_prefix, x.sip_code, x.reason")
TEXT_COLUMNS = ("leg", "account", "cli", "cld", "connect", "duration", "charged", "amount",
                "result")


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def bound(kind: str, value: str | None, tz: ZoneInfo, upper: bool) -> datetime | None:
    """--from/--to: a date is midnight in tz (--to DATE includes that whole day); a time
    without an offset is in tz."""
    if value is None:
        return None
    text = value.strip()
    try:
        if DATE_ONLY.fullmatch(text):
            day = date.fromisoformat(text) + timedelta(days=1 if upper else 0)
            return datetime.combine(day, time(), tz)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadInput(f"{kind} {value!r} is not an ISO 8601 date or time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=tz)


def account_zone(conn: psycopg.Connection, account: str) -> str:
    """Timezone of an account's page; an account deleted since still has its xDRs."""
    row = fetch_one(conn, "SELECT c.timezone FROM accounts a"
                          " JOIN customers c ON c.id = a.customer_id WHERE a.id = %s", (account,))
    if row is None:
        row = fetch_one(conn, "SELECT c.timezone FROM xdrs x"
                              " LEFT JOIN customers c ON c.id = x.customer_id"
                              " WHERE x.account_id = %s ORDER BY x.id DESC LIMIT 1", (account,))
        if row is None:
            raise BadInput(f"unknown account {account}")
    return row["timezone"] or "UTC"


def legs(conn: psycopg.Connection, where: str, params: tuple[Any, ...],
         limit: int | None = None) -> list[Row]:
    """Matching legs of the newest `limit` sessions, sessions newest first, legs in call order."""
    query = (f"WITH x AS (SELECT {COLUMNS}, {LEG_TIME} AS t FROM xdrs x WHERE {where}),"
             " s AS (SELECT session_id, min(t) AS started FROM x GROUP BY session_id"
             "       ORDER BY started DESC, session_id" + (" LIMIT %s" if limit else "") + ")"
             " SELECT x.*, c.name AS customer, c.timezone FROM x JOIN s USING (session_id)"
             " LEFT JOIN customers c ON c.id = x.customer_id"
             f" ORDER BY s.started DESC, x.session_id, {LEG_ORDER}")
    return fetch(conn, query, (*params, limit) if limit else params)


def listing(conn: psycopg.Connection, account: str | None, customer: str | None, start: str | None,
            end: str | None, limit: int) -> tuple[list[Row], ZoneInfo]:
    """An account's or a customer's xDR page."""
    if limit < 1:
        raise BadInput(f"--limit {limit}: a positive number expected")
    params: tuple[Any, ...]
    if account is not None:
        tz_name = account_zone(conn, account)
        where, params = "x.account_id = %s", (account,)
    else:
        cid = id_by_name(conn, "customers", "customer", customer)
        tz_name = conn.execute("SELECT timezone FROM customers WHERE id = %s", (cid,)).fetchone()[0]  # type: ignore[index]
        where, params = "x.customer_id = %s", (cid,)
    tz = zone(tz_name)
    low, high = bound("--from", start, tz, upper=False), bound("--to", end, tz, upper=True)
    if low is not None:
        where, params = where + f" AND {LEG_TIME} >= %s", (*params, low)
    if high is not None:
        where, params = where + f" AND {LEG_TIME} < %s", (*params, high)
    return legs(conn, where, params, limit), tz


def session(conn: psycopg.Connection, session_id: str) -> tuple[list[Row], ZoneInfo]:
    """Every leg of one session, whoever paid for it; times in the first leg's customer's zone."""
    rows = legs(conn, "x.session_id = %s", (session_id,))
    if not rows:
        raise BadInput(f"unknown session {session_id!r}")
    return rows, zone(rows[0]["timezone"])


# --- output ------------------------------------------------------------------------------

def hms(seconds: int) -> str:
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def local(moment: datetime | None, tz: ZoneInfo) -> datetime | None:
    return moment.astimezone(tz) if moment is not None else None


def record(row: Row, tz: ZoneInfo) -> Row:
    """One leg for --json (emit() turns Decimal and datetime into text)."""
    return {"session": row["session_id"], "call_id": row["call_id"], "leg": row["leg"],
            "account": row["account_id"], "customer": row["customer"], "cli": row["cli"],
            "cld": row["cld"], "access_code": row["access_code"],
            "setup_time": local(row["setup_time"], tz),
            "connect_time": local(row["connect_time"], tz),
            "disconnect_time": local(row["disconnect_time"], tz), "duration": row["duration"],
            "charged_seconds": row["charged_seconds"], "amount": row["amount"],
            "currency": row["currency"], "rate_prefix": row["rate_prefix"],
            "sip_code": row["sip_code"], "reason": row["reason"]}


def _cells(row: Row, tz: ZoneInfo) -> list[str]:
    connect = local(row["connect_time"], tz)
    result = " ".join(str(p) for p in (row["sip_code"], row["reason"]) if p not in (None, ""))
    amount = f"{format(row['amount'], 'f')} {row['currency'] or ''}".rstrip()
    return [row["leg"], row["account_id"], row["cli"] or "-", row["cld"] or "-",
            connect.strftime("%Y-%m-%d %H:%M:%S") if connect else "-", hms(row["duration"]),
            str(row["charged_seconds"]), amount, result or "-"]


def totals(rows: list[Row]) -> str:
    """calls (sessions), legs, summed leg durations and amounts per currency."""
    calls = len({r["session_id"] for r in rows})
    money: dict[str, Decimal] = {}
    for r in rows:
        money[r["currency"] or ""] = money.get(r["currency"] or "", Decimal(0)) + r["amount"]
    amounts = ", ".join(f"{format(v, 'f')} {c}".rstrip() for c, v in sorted(money.items())) or "0"
    return (f"total: {calls} call{'s' if calls != 1 else ''},"
            f" {len(rows)} leg{'s' if len(rows) != 1 else ''},"
            f" duration {hms(sum(r['duration'] for r in rows))},"
            f" charged {sum(r['charged_seconds'] for r in rows)} s, amount {amounts}")


def text(rows: list[Row], tz: ZoneInfo) -> str:
    """A session line, then its legs indented; then the totals and the timezone."""
    if not rows:
        return "(none)"
    cells = [_cells(r, tz) for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(TEXT_COLUMNS)]

    def line(values: list[str]) -> str:
        return "  " + "  ".join(v.ljust(w) for v, w in zip(values, widths)).rstrip()

    out = [line([h.upper() for h in TEXT_COLUMNS])]
    current = None
    for row, cell in zip(rows, cells):
        if row["session_id"] != current:
            current = row["session_id"]
            out.append(f"session {current}")
        out.append(line(cell))
    out.append(totals(rows) + f" (times in {tz.key})")
    return "\n".join(out)


def output(ctx: Context, found: tuple[list[Row], ZoneInfo]) -> Any:
    rows, tz = found
    return [record(r, tz) for r in rows] if ctx.json else text(rows, tz)


def register(sub: Any) -> None:
    """Add the xdr command group."""
    group = sub.add_parser("xdr", help="call records (xDRs)")
    actions = group.add_subparsers(dest="action", required=True)
    p = actions.add_parser("list", help="an account's or a customer's xDRs, newest calls first")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--account", help="this account's xDRs")
    who.add_argument("--customer", help="the xDRs of every account of this customer (name)")
    p.add_argument("--from", dest="start", metavar="WHEN",
                   help="ISO date or time (date/time without offset: the customer's timezone)")
    p.add_argument("--to", dest="end", metavar="WHEN",
                   help="ISO date (inclusive) or time (exclusive), as --from")
    p.add_argument("--limit", type=int, default=100,
                   help="most calls (sessions) shown (default 100)")
    p.set_defaults(func=lambda ctx, a: read(ctx, lambda c: output(ctx, listing(
        c, a.account, a.customer, a.start, a.end, a.limit))))
    p = actions.add_parser("show", help="every leg of one session")
    p.add_argument("session")
    p.set_defaults(func=lambda ctx, a: read(ctx, lambda c: output(ctx, session(c, a.session))))
