"""tollgate voicemail list|play|delete: an account's voicemail messages (WAV files under
<var>/voicemail/<account>/, one row each: provisioning/voicemail.py). Playing a message
copies its WAV (or prints where it is) and leaves it new or saved as it was."""
from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from provisioning import validate as v
from provisioning.cli.common import EXIT_ERROR, EXIT_OK, Context, emit
from provisioning.validate import BadInput
from provisioning.voicemail import Mailboxes, MailboxUnavailable, Message


def _number(value: str) -> int:
    if not value.isascii() or not value.isdigit() or len(value) > 18 or int(value) == 0:
        raise BadInput(f"message {value!r}: a message number expected")
    return int(value)


def _account(box: Mailboxes, value: str) -> str:
    account = v.account_id(value)
    if box.settings(account) is None:
        raise BadInput(f"unknown account {account}")
    return account


def _message(box: Mailboxes, number: str, account: str) -> Message:
    ident, owner = _number(number), _account(box, account)
    for message in box.messages(owner):
        if message.id == ident:
            return message
    raise BadInput(f"account {owner} has no message {ident}")


def _run(ctx: Context, action: Callable[[Mailboxes], int]) -> int:
    """One command on the mailboxes; PostgreSQL down is one line and exit 1."""
    box = Mailboxes(ctx.settings, dsn=ctx.dsn)
    try:
        return action(box)
    except MailboxUnavailable as exc:
        ctx.err.write(f"tollgate: PostgreSQL unavailable: {exc}\n")
        return EXIT_ERROR
    finally:
        box.close()


def _list(ctx: Context, a: Any) -> int:
    def action(box: Mailboxes) -> int:
        account = _account(box, a.account)
        emit(ctx, [{"id": m.id, "received": m.received_at, "caller": m.caller or "anonymous",
                    "duration": m.duration, "status": "saved" if m.heard else "new"}
                   for m in box.messages(account, heard=False if a.new else None)])
        return EXIT_OK
    return _run(ctx, action)


def _play(ctx: Context, a: Any) -> int:
    def action(box: Mailboxes) -> int:
        message = _message(box, a.id, a.account)
        if not message.path.is_file():
            ctx.err.write(f"tollgate: message {message.id}: its recording {message.path} "
                          "is missing\n")
            return EXIT_ERROR
        if a.out is None:
            emit(ctx, str(message.path))
            return EXIT_OK
        try:
            shutil.copyfile(message.path, Path(a.out))
        except OSError as exc:
            ctx.err.write(f"tollgate: cannot write {a.out}: {exc.strerror or exc}\n")
            return EXIT_ERROR
        emit(ctx, f"copied message {message.id} to {a.out}")
        return EXIT_OK
    return _run(ctx, action)


def _delete(ctx: Context, a: Any) -> int:
    def action(box: Mailboxes) -> int:
        ident, account = _number(a.id), _account(box, a.account)
        if not box.delete(ident, account):
            raise BadInput(f"account {account} has no message {ident}")
        emit(ctx, f"deleted message {ident} of {account}")
        return EXIT_OK
    return _run(ctx, action)


def register(sub: Any) -> None:
    """Add the voicemail command group."""
    group = sub.add_parser("voicemail", help="an account's voicemail messages")
    actions = group.add_subparsers(dest="action", required=True)
    p = actions.add_parser("list", help="an account's messages, oldest first")
    p.add_argument("account")
    p.add_argument("--new", action="store_true", help="only the messages not heard yet")
    p.set_defaults(func=_list)
    p = actions.add_parser("play", help="copy a message's WAV to a file, or print its path")
    p.add_argument("id")
    p.add_argument("--account", required=True, help="the account the message is for")
    p.add_argument("--out", metavar="FILE", help="where to copy the WAV")
    p.set_defaults(func=_play)
    p = actions.add_parser("delete", help="delete a message and its file")
    p.add_argument("id")
    p.add_argument("--account", required=True, help="the account the message is for")
    p.set_defaults(func=_delete)
