"""tollgate voucher generate|batches|list|export|redeem: prepaid vouchers in batches
(provisioning/vouchers.py). Numbers are shown in full only by `export` (CSV, for
printing); `list` masks all but the last 4 digits."""
from __future__ import annotations

from typing import Any

from provisioning import loader, vouchers
from provisioning import validate as v
from provisioning.cli.common import Context, read, write
from provisioning.validate import BadInput


def _generate(ctx: Context, a: Any) -> int:
    amount = v.money("amount", a.amount)
    if amount <= 0:
        raise BadInput(f"amount {a.amount!r}: more than 0 expected")
    currency = v.currency(a.currency)
    expires = v.timestamp("expiry", a.expires)
    low, high = _lengths(a.length)
    return write(ctx, lambda c: (loader.Changes(), vouchers.generate(
        c, _count(a.count), amount, currency, expires, low, high,
        v.short_text("comment", a.comment, 500))))


def _count(value: str) -> int:
    if not value.isdigit():
        raise BadInput(f"count {value!r}: a whole number expected")
    return int(value)


def _lengths(value: str) -> tuple[int, int]:
    """'11' or '10-12' -> (min, max) digits."""
    low, _, high = value.partition("-")
    if not low.isdigit() or (high and not high.isdigit()):
        raise BadInput(f"length {value!r}: digits (11) or a range (10-12) expected")
    return int(low), int(high or low)


def _batch(value: str) -> int:
    if not value.isdigit():
        raise BadInput(f"batch {value!r}: a batch number expected")
    return int(value)


def _export(ctx: Context, batch: str) -> int:
    with ctx.pg() as conn:
        ctx.out.write(vouchers.export_csv(conn, _batch(batch)))
    return 0


def register(sub: Any) -> None:
    """Add the voucher command group."""
    group = sub.add_parser("voucher", help="prepaid vouchers: batches, export, redemption")
    actions = group.add_subparsers(dest="action", required=True)
    p = actions.add_parser("generate", help="a batch of new single-use vouchers")
    p.add_argument("--count", required=True, help="how many (1-100000)")
    p.add_argument("--amount", required=True, help="what each is worth")
    p.add_argument("--currency", required=True, help="e.g. USD")
    p.add_argument("--expires", default="", help="ISO time after which they are void")
    p.add_argument("--length", default=str(vouchers.DEFAULT_LENGTH),
                   help="digits of a voucher number, or a range (10-12); default 11")
    p.add_argument("--comment", default="", help="kept with the batch")
    p.set_defaults(func=_generate)
    p = actions.add_parser("batches", help="every batch: used, unused")
    p.set_defaults(func=lambda ctx, a: read(ctx, vouchers.batches))
    p = actions.add_parser("list", help="a batch's vouchers (numbers masked)")
    p.add_argument("batch")
    p.set_defaults(func=lambda ctx, a: read(ctx, lambda c: vouchers.listing(c, _batch(a.batch))))
    p = actions.add_parser("export", help="a batch's unused vouchers in full, as CSV")
    p.add_argument("batch")
    p.set_defaults(func=lambda ctx, a: _export(ctx, a.batch))
    p = actions.add_parser("redeem", help="credit an account with a voucher (uses it up)")
    p.add_argument("code")
    p.add_argument("account")
    p.set_defaults(func=lambda ctx, a: write(ctx, lambda c: vouchers.redeem(c, a.code,
                                                                            a.account)))
