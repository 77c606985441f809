"""tollgate app ...: voice applications (type, complete settings, access numbers)."""
from __future__ import annotations

from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from provisioning import app_settings, loader
from provisioning import validate as v
from provisioning.cli.common import Row, Spec, fetch, fetch_one, insert, read, update, write
from provisioning.validate import BadInput

SET_HELP = "setting NAME=VALUE (repeatable); see `tollgate app options TYPE`"


def app_row(conn: psycopg.Connection, name: object, lock: bool = False) -> Row:
    query = "SELECT * FROM voice_applications WHERE name = %s" + (" FOR UPDATE" if lock else "")
    row = fetch_one(conn, query, (str(name),))
    if row is None:
        raise BadInput(f"unknown voice application {name!r}")
    return row


def auth_code_lengths(settings: dict[str, Any] | None) -> tuple[int, int]:
    """(min, max) PIN length an app accepts; 4/4 when the account calls via no app."""
    settings = settings or {}
    return (int(settings.get("min_auth_code_length", 4)),
            int(settings.get("max_auth_code_length", 4)))


def _settings(kind: str, spec: Spec, base: dict[str, Any] | None) -> dict[str, Any]:
    given = spec.get("settings") or {}
    if not isinstance(given, dict):
        raise BadInput("settings: a map of option names to values expected")
    for assignment in spec.get("set") or []:
        name, value = app_settings.parse(kind, assignment)
        given[name] = value
    return app_settings.complete(kind, given, base)


def _set_numbers(conn: psycopg.Connection, app_id: int, app_name: str, numbers: list[Any]) -> None:
    """Replace the app's access numbers (each "NUMBER" or "NUMBER:BRAND", the brand prompt
    folder that number's callers hear first); one number belongs to one app."""
    clean = [v.branded_access_number(n) for n in numbers]
    conn.execute("DELETE FROM access_numbers WHERE app_id = %s", (app_id,))
    for number, brand in clean:
        other = conn.execute("SELECT a.name FROM access_numbers n JOIN voice_applications a"
                             " ON a.id = n.app_id WHERE n.number = %s", (number,)).fetchone()
        if other:
            raise BadInput(f"access number {number} already belongs to "
                           f"voice application {other[0]!r}")
        conn.execute("INSERT INTO access_numbers (number, app_id, brand_prompts)"
                     " VALUES (%s, %s, %s)", (number, app_id, brand))


def _numbers(conn: psycopg.Connection, app_id: int) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT number FROM access_numbers WHERE app_id = %s ORDER BY number", (app_id,))]


def _branded_numbers(conn: psycopg.Connection, app_id: int) -> list[str]:
    """The app's access numbers as given: NUMBER, or NUMBER:BRAND."""
    return [r[0] + (f":{r[1]}" if r[1] else "") for r in conn.execute(
        "SELECT number, brand_prompts FROM access_numbers WHERE app_id = %s ORDER BY number",
        (app_id,))]


def check_pins(conn: psycopg.Connection, app_id: int, settings: dict[str, Any]) -> None:
    """Every #PIN alias of the accounts calling via this app must fit its PIN length."""
    low, high = auth_code_lengths(settings)
    for row in fetch(conn, "SELECT l.id, a.associated_number FROM aliases l JOIN accounts a"
                           " ON a.id = l.account_id WHERE a.ivr_app_id = %s AND l.id LIKE %s",
                     (app_id, "%#%")):
        v.check_pin_alias(row["id"], row["associated_number"], low, high)


def create(conn: psycopg.Connection, name: str, spec: Spec) -> loader.Changes:
    """Insert a voice application with complete settings and its access numbers."""
    _known(spec)
    clean = v.name("voice application", name)
    kind = app_settings.app_type(spec.get("type"))
    settings = _settings(kind, spec, None)
    if exists(conn, clean):
        raise BadInput(f"voice application {clean!r} already exists")
    app_id = insert(conn, "voice_applications",
                    {"name": clean, "type": kind, "settings": Jsonb(settings)})
    _set_numbers(conn, app_id, clean, spec.get("access_numbers") or [])
    return loader.app_changes(conn, app_id)


def change(conn: psycopg.Connection, name: str, spec: Spec, merge: bool = True) -> loader.Changes:
    """Change settings (merged over the stored ones unless merge=False), name or access numbers."""
    _known(spec)
    row = app_row(conn, name, lock=True)
    if spec.get("type", row["type"]) != row["type"]:
        raise BadInput(f"voice application {name}: type cannot change ({row['type']})")
    old_numbers = _numbers(conn, row["id"])
    base = row["settings"] if merge else None
    values: Spec = {"settings": Jsonb(_settings(row["type"], spec, base))}
    if spec.get("rename") is not None:
        values["name"] = v.name("voice application", spec["rename"])
    update(conn, "voice_applications", "id", row["id"], values)
    if spec.get("access_numbers") is not None:
        _set_numbers(conn, row["id"], name, spec["access_numbers"])
    check_pins(conn, row["id"], values["settings"].obj)
    return loader.app_changes(conn, row["id"], old_numbers)


def _known(spec: Spec) -> None:
    unknown = set(spec) - {"type", "settings", "set", "access_numbers", "rename"}
    if unknown:
        raise BadInput(f"voice application: unknown field {sorted(unknown)[0]!r}")


def remove(conn: psycopg.Connection, name: str) -> loader.Changes:
    """Delete an application no account calls via."""
    row = app_row(conn, name, lock=True)
    used = conn.execute("SELECT id FROM accounts WHERE ivr_app_id = %s LIMIT 1",
                        (row["id"],)).fetchone()
    if used:
        raise BadInput(f"voice application {name} is used by account {used[0]}")
    numbers = _numbers(conn, row["id"])
    conn.execute("DELETE FROM voice_applications WHERE id = %s", (row["id"],))
    return loader.app_changes(conn, row["id"], numbers)


def exists(conn: psycopg.Connection, name: str) -> bool:
    found = conn.execute("SELECT 1 FROM voice_applications WHERE name = %s", (name,)).fetchone()
    return found is not None


def show(conn: psycopg.Connection, name: str) -> Row:
    row = app_row(conn, name)
    row.pop("created_at", None)
    row["access_numbers"] = _branded_numbers(conn, row["id"])
    return row


def listing(conn: psycopg.Connection) -> list[Row]:
    return fetch(conn, "SELECT a.id, a.name, a.type,"
                       " coalesce((SELECT string_agg(number || coalesce(':' || brand_prompts,"
                       " ''), ',' ORDER BY number)"
                       " FROM access_numbers n WHERE n.app_id = a.id), '') AS access_numbers"
                       " FROM voice_applications a ORDER BY a.name")


def options(kind: str) -> list[Row]:
    """The settings schema of one application type."""
    return [{"name": o.name, "default": o.default, "type": o.type_name, "help": o.help}
            for o in app_settings.SCHEMA[app_settings.app_type(kind)].values()]


NUMBER_HELP = ("an access number (repeatable); :BRAND names the brand prompt folder its "
               "callers hear before the app's brand_prompts and the default prompts")


def register(sub: Any) -> None:
    """Add the app command group."""
    group = sub.add_parser("app", help="voice applications")
    actions = group.add_subparsers(dest="action", required=True)
    p = actions.add_parser("create", help="create a voice application")
    p.add_argument("name")
    p.add_argument("--type", required=True, choices=app_settings.TYPES)
    p.add_argument("--set", action="append", metavar="NAME=VALUE", help=SET_HELP)
    p.add_argument("--access-number", dest="access_numbers", action="append",
                   metavar="NUMBER[:BRAND]", help=NUMBER_HELP)
    p.set_defaults(func=lambda ctx, a: write(ctx, lambda c: (
        create(c, a.name, {"type": a.type, "set": a.set, "access_numbers": a.access_numbers}),
        f"created voice application {a.name}")))
    p = actions.add_parser("update", help="change a voice application")
    p.add_argument("name")
    p.add_argument("--rename", metavar="NEW")
    p.add_argument("--set", action="append", metavar="NAME=VALUE", help=SET_HELP)
    p.add_argument("--access-number", dest="access_numbers", action="append",
                   metavar="NUMBER[:BRAND]", help=NUMBER_HELP + "; replaces the access numbers")
    p.set_defaults(func=lambda ctx, a: write(ctx, lambda c: (
        change(c, a.name, {"set": a.set, "access_numbers": a.access_numbers, "rename": a.rename}),
        f"updated voice application {a.name}")))
    p = actions.add_parser("delete", help="delete a voice application")
    p.add_argument("name")
    p.set_defaults(func=lambda ctx, a: write(ctx, lambda c: (
        remove(c, a.name), f"deleted voice application {a.name}")))
    p = actions.add_parser("show", help="one voice application")
    p.add_argument("name")
    p.set_defaults(func=lambda ctx, a: read(ctx, lambda c: show(c, a.name)))
    actions.add_parser("list", help="all voice applications").set_defaults(
        func=lambda ctx, a: read(ctx, listing))
    p = actions.add_parser("options", help="the settings of an application type")
    p.add_argument("type", choices=app_settings.TYPES)
    p.set_defaults(func=lambda ctx, a: _print_options(ctx, a.type))


def _print_options(ctx: Any, kind: str) -> int:
    from provisioning.cli.common import emit

    emit(ctx, options(kind))
    return 0
