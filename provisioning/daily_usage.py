"""The e-mail a client's daily_usage_email gets when its max daily usage is reached: once
per client and day, whoever notices first (the xDR writer billing the call that reached
it, or Kamailio refusing a call for it: both add "<customer id>:<day>" to
keyspace.DAILY_REACHED, and the xDR writer sends from there).

Once per day holds across writers: the day's daily_usage row is locked while the message
goes out and notified_at is set in the same transaction; a relay that refuses rolls it
back, and the mark goes back into the set to be tried again.
"""
from __future__ import annotations

import re
from datetime import date

import psycopg

from tollgate.mail import Mailer

CLAIM = """
INSERT INTO daily_usage (customer_id, day) VALUES (%s, %s)
ON CONFLICT (customer_id, day) DO NOTHING"""
READ = """
SELECT c.name, c.daily_usage_email, c.max_daily_usage, c.currency, c.timezone, d.spent,
       d.notified_at
  FROM daily_usage d JOIN customers c ON c.id = d.customer_id
 WHERE d.customer_id = %s AND d.day = %s
   FOR UPDATE OF d"""
DONE = """
UPDATE daily_usage SET notified_at = now(), reached_at = coalesce(reached_at, now())
 WHERE customer_id = %s AND day = %s"""
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def parse_mark(mark: bytes | str) -> tuple[int, date] | None:
    """(customer id, day) of a keyspace.DAILY_REACHED member; None when malformed."""
    text = mark.decode(errors="replace") if isinstance(mark, bytes) else mark
    ident, _, day = text.partition(":")
    try:
        return int(ident), date.fromisoformat(day)
    except ValueError:
        return None


def notify(conn: psycopg.Connection, mailer: Mailer, customer_id: int, day: date) -> bool:
    """E-mail the client that its day's limit is reached, unless it was told already or
    has no address; True when a message went out. Raises what the relay raises."""
    with conn.transaction():
        conn.execute(CLAIM, (customer_id, day))
        row = conn.execute(READ, (customer_id, day)).fetchone()
        if row is None:
            return False  # the customer is gone
        name, email, limit, currency, tz, spent, notified_at = row
        if notified_at is not None or not email or limit is None:
            return False
        subject, body = message(name, day, limit, spent, currency, tz)
        sent = mailer.send(email, subject, body)
        conn.execute(DONE, (customer_id, day))
        return sent


def message(name: str, day: date, limit: object, spent: object, currency: str,
            tz: str) -> tuple[str, str]:
    """The subject and body (a client name may hold any character: controls removed)."""
    client = _CONTROL.sub(" ", name).strip()
    subject = f"Max daily usage reached: {client} on {day.isoformat()}"
    body = (f"The client {client} has reached its max daily usage of {limit} {currency} "
            f"on {day.isoformat()} ({tz}).\n"
            f"Spent so far today: {spent} {currency}.\n\n"
            "New external outbound calls are refused until midnight in the client's "
            "timezone, when the counter starts over.\n")
    return subject, body
