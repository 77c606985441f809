"""tollgate recording list|delete: a client's on-demand call recordings (WAV files under
the var directory, one row each). A client's recording is deleted only when the client
may remove recordings ("Allow Client to remove recordings"), unless the operator forces."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg

from provisioning import loader
from provisioning.cli.common import Row, fetch, fetch_one, read, write
from provisioning.validate import BadInput


def listing(conn: psycopg.Connection, customer: object) -> list[Row]:
    """The client's recordings, newest first."""
    client = fetch_one(conn, "SELECT id FROM customers WHERE name = %s", (str(customer),))
    if client is None:
        raise BadInput(f"unknown customer {customer!r}")
    return fetch(conn, "SELECT id, started_at, account_id, cli, cld, seconds, path"
                       " FROM recordings WHERE customer_id = %s ORDER BY started_at DESC, id DESC",
                 (client["id"],))


def remove(conn: psycopg.Connection, ident: object, force: bool = False) -> loader.Changes:
    """Delete a recording and its file."""
    try:
        number = int(str(ident))
    except ValueError:
        raise BadInput(f"recording {ident!r}: a recording number expected") from None
    row = fetch_one(conn, "SELECT r.id, r.path, c.name, c.allow_recording_removal"
                          " FROM recordings r JOIN customers c ON c.id = r.customer_id"
                          " WHERE r.id = %s FOR UPDATE OF r", (number,))
    if row is None:
        raise BadInput(f"unknown recording {number}")
    if not row["allow_recording_removal"] and not force:
        raise BadInput(f"recording {number}: customer {row['name']} may not remove "
                       "recordings (allow_recording_removal); --force to delete anyway")
    conn.execute("DELETE FROM recordings WHERE id = %s", (number,))
    # the file goes with the row; a commit failing after this would leave the row alone,
    # and deleting it again then succeeds (missing_ok)
    Path(row["path"]).unlink(missing_ok=True)
    return loader.Changes()


def register(sub: Any) -> None:
    """Add the recording command group."""
    group = sub.add_parser("recording", help="a client's on-demand call recordings")
    actions = group.add_subparsers(dest="action", required=True)
    p = actions.add_parser("list", help="a client's recordings")
    p.add_argument("customer")
    p.set_defaults(func=lambda ctx, a: read(ctx, lambda c: listing(c, a.customer)))
    p = actions.add_parser("delete", help="delete a recording and its file")
    p.add_argument("id")
    p.add_argument("--force", action="store_true",
                   help="even when the client may not remove recordings")
    p.set_defaults(func=lambda ctx, a: write(ctx, lambda c: (
        remove(c, a.id, a.force), f"deleted recording {a.id}")))
