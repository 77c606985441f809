"""The voicemail message store (second-number-service.txt) against real PostgreSQL and a real
SMTP server: a message the IVR recorded is filed once, whatever the network put in its
Call-ID and caller ID; a message recorded while PostgreSQL is down waits in the spool and
is filed by the next replay; only the mailbox's owner reads, saves or deletes its
messages; the owner may be e-mailed each one with its WAV; `tollgate voicemail` lists,
plays and deletes them."""
from __future__ import annotations

import json
import wave
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest

from provisioning.loader import unpack
from provisioning.migrate import migrate
from provisioning.voicemail import (
    Deposit,
    Mailboxes,
    MailboxSettings,
    MailboxUnavailable,
    clean_caller,
)
from tests.cli import Tollgate
from tests.mailbox import Mailbox
from tests.servers import PostgresServer, free_port
from tollgate.config import Settings
from tollgate.mail import MailError

pytestmark = pytest.mark.integration

JOHN, JANE = "42027777100", "42027777200"     # two second numbers, each with a mailbox
WHEN = datetime(2026, 3, 4, 10, 30, 5, tzinfo=timezone.utc)


def settings_for(dsn: str, var: Path, **more: object) -> Settings:
    """Settings whose pg_* reach the database of the DSN, the var folder given."""
    parts = dict(part.split("=", 1) for part in dsn.split())
    values = {"pg_host": parts["host"], "pg_port": int(parts["port"]), "pg_user": parts["user"],
              "pg_database": parts["dbname"], "var_dir": str(var), **more}
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def var(tmp_path, monkeypatch) -> Path:
    """The var folder of the mailboxes and of the CLI (TOLLGATE_VAR_DIR)."""
    folder = tmp_path / "var"
    monkeypatch.setenv("TOLLGATE_VAR_DIR", str(folder))
    return folder


@pytest.fixture
def tg(pg_dsn, redis_server, capsys, var) -> Tollgate:
    """`tollgate ...` on a migrated database with John's and Jane's second numbers."""
    migrate(pg_dsn)
    tool = Tollgate(pg_dsn, redis_server.url(), capsys)
    for argv in (("customer", "create", "Second Numbers", "--currency", "EUR"),
                 ("tariff", "create", "Free", "--currency", "EUR"),
                 ("product", "create", "Second Number", "--currency", "EUR", "--rating", "Free"),
                 *(("account", "create", number, "--customer", "Second Numbers", "--product",
                    "Second Number", "--answering-mode", "voicemail") for number in (JOHN, JANE))):
        assert tool(*argv) == 0, tool.err
    return tool


@pytest.fixture
def boxes(tg, pg_dsn, var):
    box = Mailboxes(settings_for(pg_dsn, var))
    yield box
    box.close()


def record(box: Mailboxes, account: str, key: str, caller: str = "420601111222",
           seconds: int = 2, when: datetime = WHEN) -> Deposit:
    """What the IVR does: a WAV of `seconds` of tone at recording_path(), described."""
    path = box.recording_path(account, key)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(bytes([0x00, 0x10, 0x00, 0xF0]) * 4000 * seconds)
    return Deposit(key, account, caller, when, seconds, path)


def rows(dsn: str, sql: str, *args) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql, args).fetchall()


def spooled(box: Mailboxes) -> list[Path]:
    return sorted(box.spool.glob("*.json")) if box.spool.exists() else []


def test_a_deposit_is_filed_listed_and_counted_as_new(boxes, pg_dsn, var):
    assert boxes.settings(JOHN) == MailboxSettings(JOHN, "", 100, 180, False, "")
    assert boxes.settings("42099999999") is None
    d = record(boxes, JOHN, "call-1@10.0.0.1", seconds=3)
    assert d.path.parent == var.resolve() / "voicemail" / JOHN
    assert d.path.parent.stat().st_mode & 0o777 == 0o750

    assert boxes.deposit(d) is True
    [m] = boxes.messages(JOHN)
    assert (m.account, m.caller, m.received_at, m.duration, m.heard, m.path) == (
        JOHN, "420601111222", WHEN, 3, False, d.path)
    assert boxes.counts(JOHN) == (1, 0) and boxes.counts(JANE) == (0, 0)
    assert boxes.messages(JANE) == [] and spooled(boxes) == []
    # the row names the file relative to the voicemail root, with its size
    assert rows(pg_dsn, "SELECT path, size_bytes FROM voicemail_messages") == [
        (f"{JOHN}/{d.path.name}", d.path.stat().st_size)]


def test_messages_come_oldest_first_and_heard_ones_are_saved(boxes):
    later = record(boxes, JOHN, "later", when=WHEN + timedelta(minutes=5))
    first = record(boxes, JOHN, "first")
    assert boxes.deposit(later) and boxes.deposit(first)
    old, new = boxes.messages(JOHN)
    assert (old.path, new.path) == (first.path, later.path)

    assert boxes.mark_heard(old.id, JANE) is False      # not Jane's message
    assert boxes.counts(JOHN) == (2, 0)
    assert boxes.mark_heard(old.id, JOHN) is True
    assert boxes.counts(JOHN) == (1, 1)
    assert [m.id for m in boxes.messages(JOHN, heard=False)] == [new.id]
    assert [m.id for m in boxes.messages(JOHN, heard=True)] == [old.id]
    assert boxes.mark_heard(987654, JOHN) is False and boxes.mark_heard(2**70, JOHN) is False


def test_only_the_owner_deletes_a_message_row_first_then_file(boxes, pg_dsn, var):
    d = record(boxes, JOHN, "to-delete")
    assert boxes.deposit(d)
    [m] = boxes.messages(JOHN)
    assert boxes.delete(m.id, JANE) is False
    assert d.path.exists() and boxes.counts(JOHN) == (1, 0)

    # PostgreSQL unreachable: the delete fails before the file is touched
    down = Mailboxes(settings_for(pg_dsn, var, pg_port=free_port()))
    with pytest.raises(MailboxUnavailable):
        down.delete(m.id, JOHN)
    assert d.path.exists()

    assert boxes.delete(m.id, JOHN) is True
    assert rows(pg_dsn, "SELECT count(*) FROM voicemail_messages") == [(0,)]
    assert not d.path.exists()
    assert boxes.delete(m.id, JOHN) is False


def test_a_full_mailbox_says_so(redis_client, tg, boxes):
    assert tg("account", "update", JOHN, "--voicemail-max-messages", "2",
              "--voicemail-email", "john@example.com", "--voicemail-max-seconds", "60",
              "--voicemail-pin-required", "true", "--language", "cs") == 0, tg.err
    assert boxes.settings(JOHN) == MailboxSettings(JOHN, "john@example.com", 2, 60, True, "cs")
    # the IVR learns from the account record whether the owner keys the password by ANI
    assert unpack(redis_client.get(f"tg:account:{JOHN}"))["voicemail_pin_required"] is True
    assert unpack(redis_client.get(f"tg:account:{JANE}"))["voicemail_pin_required"] is False

    assert boxes.deposit(record(boxes, JOHN, "one"))
    assert boxes.is_full(JOHN) is False
    assert boxes.deposit(record(boxes, JOHN, "two"))
    assert boxes.is_full(JOHN) is True
    # saved messages count too; deleting one makes room
    [first, _] = boxes.messages(JOHN)
    assert boxes.mark_heard(first.id, JOHN) and boxes.is_full(JOHN) is True
    assert boxes.delete(first.id, JOHN) and boxes.is_full(JOHN) is False
    assert boxes.is_full(JANE) is False
    assert boxes.is_full("42099999999") is True   # no mailbox: no room


def test_the_same_message_deposited_twice_is_filed_once(boxes, pg_dsn):
    d = record(boxes, JOHN, "same-call-id")
    assert boxes.deposit(d) is True
    assert boxes.deposit(d) is True
    assert rows(pg_dsn, "SELECT count(*) FROM voicemail_messages") == [(1,)]
    assert boxes.replay() == [] and spooled(boxes) == []
    # the same Call-ID reaching another mailbox is another message, in its own folder
    other = record(boxes, JANE, "same-call-id")
    assert other.path != d.path and boxes.deposit(other)
    assert boxes.counts(JOHN) == boxes.counts(JANE) == (1, 0)


def test_hostile_call_id_and_caller_bytes_are_made_harmless(boxes, pg_dsn):
    key = "../../etc/passwd\x00\r\n<sip:x@y>;tag=\udcff\u202e" + "x" * 5000
    d = record(boxes, JOHN, key, caller="+1 (555) 010\r\nBcc: evil@example.com\x00<sip:x>é")
    assert d.path.parent == boxes.root / JOHN
    assert len(d.path.stem) == 32 and set(d.path.stem) <= set("0123456789abcdef")
    assert boxes.recording_path(JOHN, key) == d.path
    assert boxes.recording_path(JOHN, key + "!") != d.path
    assert boxes.deposit(d) is True
    assert boxes.deposit(record(boxes, JOHN, "long-cli", caller="9" * 200 + "\u0663"))
    assert [m.caller for m in boxes.messages(JOHN)] == [
        "+1555010Bccevil@example.comsipx", "9" * 64]
    assert clean_caller(b"\xff+42\x00 0") == "+420"
    assert boxes.deposit(record(boxes, JOHN, "anonymous", caller="")) is True
    assert boxes.messages(JOHN)[-1].caller == ""
    # an account ID is a folder name: nothing that leaves the voicemail root
    for bad in ("..", ".", "../x", "a/b", "", "x" * 65, "a\x00", "\udcff"):
        with pytest.raises(ValueError):
            boxes.recording_path(bad, "k")
        assert (boxes.settings(bad), boxes.is_full(bad), boxes.messages(bad),
                boxes.counts(bad), boxes.delete(1, bad)) == (None, True, [], (0, 0), False)
    assert rows(pg_dsn, "SELECT count(*) FROM voicemail_messages") == [(3,)]


def test_a_message_recorded_while_postgresql_is_down_is_filed_by_replay_once(boxes, pg_dsn,
                                                                            var):
    down = Mailboxes(settings_for(pg_dsn, var, pg_port=free_port()))
    key = "down-\udcfe@host"
    d = record(down, JOHN, key, caller="sip:+420601111222")
    assert down.deposit(d) is False
    [sidecar] = spooled(down)
    assert json.loads(sidecar.read_text())["account"] == JOHN
    assert d.path.exists()
    for read in (lambda: down.settings(JOHN), lambda: down.is_full(JOHN),
                 lambda: down.messages(JOHN), lambda: down.counts(JOHN)):
        with pytest.raises(MailboxUnavailable):
            read()
    assert down.replay() == [] and spooled(down) == [sidecar]

    # PostgreSQL reachable: the next replay files it, once, and returns it to notify
    [filed] = boxes.replay()
    assert filed == Deposit(key, JOHN, "sip+420601111222", WHEN, 2, d.path)
    assert spooled(boxes) == [] and boxes.replay() == []
    [m] = boxes.messages(JOHN)
    assert (m.caller, m.path) == ("sip+420601111222", d.path)
    # the IVR depositing it again afterwards changes nothing
    assert boxes.deposit(d) is True and boxes.counts(JOHN) == (1, 0)


def test_one_mailboxes_object_reconnects_when_postgresql_comes_back(tmp_path):
    server = PostgresServer().start()
    try:
        dsn = server.dsn()
        migrate(dsn)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("INSERT INTO customers (name, currency) VALUES ('c', 'EUR');"
                         "INSERT INTO products (name, currency) VALUES ('p', 'EUR');"
                         f"INSERT INTO ids VALUES ('{JOHN}', 'account');"
                         f"INSERT INTO accounts (id, customer_id, product_id)"
                         f" VALUES ('{JOHN}', 1, 1)")
        box = Mailboxes(settings_for(dsn, tmp_path / "var"))
        assert box.settings(JOHN) is not None            # connected
        assert box._conn().execute("SHOW statement_timeout").fetchone() == ("3s",)
        server.stop()
        d = record(box, JOHN, "while-down")
        assert box.deposit(d) is False
        with pytest.raises(MailboxUnavailable):
            box.counts(JOHN)
        server.start()
        assert box.replay() == [d]
        assert box.counts(JOHN) == (1, 0) and spooled(box) == []
        box.close()
    finally:
        server.discard()


def test_a_spooled_message_whose_file_is_gone_is_dropped(boxes, pg_dsn, var):
    down = Mailboxes(settings_for(pg_dsn, var, pg_port=free_port()))
    d = record(down, JOHN, "file-lost")
    assert down.deposit(d) is False and len(spooled(down)) == 1
    d.path.unlink()
    assert boxes.replay() == [] and spooled(boxes) == []
    assert boxes.counts(JOHN) == (0, 0)
    # a deposit of a file that is gone files nothing either
    assert boxes.deposit(d) is False and spooled(boxes) == []


def test_a_message_for_an_account_deleted_meanwhile_is_set_aside(tg, boxes, pg_dsn, var):
    down = Mailboxes(settings_for(pg_dsn, var, pg_port=free_port()))
    d = record(down, JANE, "orphan")
    assert down.deposit(d) is False
    assert tg("account", "delete", JANE) == 0, tg.err
    assert boxes.replay() == [] and spooled(boxes) == []
    assert [p.name for p in boxes.rejected.iterdir()] == [f"{d.path.stem}.json"]
    assert d.path.exists()   # the recording itself stays for the operator


def test_a_message_is_e_mailed_with_its_wav(boxes, pg_dsn, var):
    relay = Mailbox().start()
    try:
        box = Mailboxes(settings_for(pg_dsn, var, smtp_host="127.0.0.1", smtp_port=relay.port))
        d = record(box, JOHN, "mail-me", caller="+420601111222\r\nX-Evil: 1", seconds=3)
        assert box.email(d, "john@example.com") is True
        [mail] = relay.to("john@example.com")
        assert mail["Subject"] == "Voicemail from +420601111222X-Evil1 (3 s)"
        assert mail["X-Evil"] is None
        assert "2026-03-04 10:30:05 UTC" in mail.get_body(("plain",)).get_content()
        [wav] = list(mail.iter_attachments())
        assert wav.get_content_type() == "audio/wav"
        assert wav.get_filename() == "voicemail-20260304-103005-+420601111222X-Evil1.wav"
        assert wav.get_content() == d.path.read_bytes()
    finally:
        relay.stop()
    # no relay set: nothing sent, and said so; a relay that is down raises for a retry
    assert boxes.email(d, "john@example.com") is False
    closed = Mailboxes(settings_for(pg_dsn, var, smtp_host="127.0.0.1", smtp_port=free_port()))
    with pytest.raises(MailError):
        closed.email(d, "john@example.com")


def test_the_cli_lists_plays_and_deletes_a_mailboxs_messages(tg, boxes, tmp_path):
    assert boxes.deposit(record(boxes, JOHN, "cli-1", caller=""))
    assert boxes.deposit(record(boxes, JOHN, "cli-2", when=WHEN + timedelta(hours=1)))
    first, second = boxes.messages(JOHN)
    assert boxes.mark_heard(first.id, JOHN)

    assert tg("voicemail", "list", JOHN) == 0, tg.err
    lines = tg.out.splitlines()
    assert lines[0].split() == ["ID", "RECEIVED", "CALLER", "DURATION", "STATUS"]
    assert lines[1].split() == [str(first.id), "2026-03-04T10:30:05+00:00", "anonymous", "2",
                                "saved"]
    assert lines[2].split() == [str(second.id), "2026-03-04T11:30:05+00:00", "420601111222",
                                "2", "new"]
    assert tg("--json", "voicemail", "list", JOHN, "--new") == 0
    assert [m["id"] for m in json.loads(tg.out)] == [second.id]
    assert tg("voicemail", "list", JANE) == 0 and tg.out == "(none)\n"

    out = tmp_path / "copy.wav"
    assert tg("voicemail", "play", str(second.id), "--account", JOHN, "--out", str(out)) == 0
    assert out.read_bytes() == second.path.read_bytes()
    assert tg("voicemail", "play", str(second.id), "--account", JOHN) == 0
    assert tg.out.strip() == str(second.path)
    assert boxes.counts(JOHN) == (1, 1)   # playing from the CLI leaves it new

    assert tg("voicemail", "delete", str(second.id), "--account", JOHN) == 0, tg.err
    assert not second.path.exists() and boxes.counts(JOHN) == (0, 1)


@pytest.mark.parametrize("argv, code, said", [
    (("list", "420 277"), 2, "account ID '420 277': character ' ' is not allowed"),
    (("list", "42099999999"), 2, "unknown account 42099999999"),
    (("play", "abc", "--account", JOHN), 2, "message 'abc': a message number expected"),
    (("play", "0", "--account", JOHN), 2, "message '0': a message number expected"),
    (("play", "99999999999999999999", "--account", JOHN), 2, "a message number expected"),
    (("play", "424242", "--account", JOHN), 2, f"account {JOHN} has no message 424242"),
    (("play", "{jane}", "--account", JOHN), 2, f"account {JOHN} has no message"),
    (("play", "{jane}", "--account", JANE, "--out", "/nonexistent/dir/x.wav"), 1,
     "cannot write /nonexistent/dir/x.wav"),
    (("play", "{jane}"), 2, "the following arguments are required: --account"),
    (("delete", "{jane}", "--account", JOHN), 2, f"account {JOHN} has no message"),
    (("delete", "-1", "--account", JOHN), 2, "message '-1': a message number expected"),
    (("delete", "{jane}", "--account", "42099999999"), 2, "unknown account 42099999999"),
])
def test_bad_cli_input_is_one_line_and_changes_nothing(tg, boxes, argv, code, said):
    d = record(boxes, JANE, "janes")
    assert boxes.deposit(d)
    [m] = boxes.messages(JANE)
    argv = tuple(a.replace("{jane}", str(m.id)) for a in argv)
    assert tg("voicemail", *argv) == code
    assert len(tg.err.splitlines()) == 1 and said in tg.err, tg.err
    assert tg.err.startswith("tollgate: ")
    assert boxes.messages(JANE) == [m] and d.path.exists()
    assert not Path("/nonexistent/dir/x.wav").exists()


def test_the_cli_says_when_postgresql_is_down(tg, var):
    dead = f"host=127.0.0.1 port={free_port()} user=tollgate dbname=x"
    assert tg("--dsn", dead, "voicemail", "list", JOHN) == 1
    assert len(tg.err.splitlines()) == 1 and "PostgreSQL unavailable" in tg.err


@pytest.mark.parametrize("option, value, said", [
    ("--voicemail-max-messages", "0", "voicemail max messages 0: a whole number from 1 to"),
    ("--voicemail-max-messages", "10001", "a whole number from 1 to 10000"),
    ("--voicemail-max-seconds", "9", "voicemail max seconds 9: a whole number from 10 to 3600"),
    ("--voicemail-max-seconds", "1e3", "voicemail max seconds '1e3'"),
    ("--voicemail-email", "john at example", "e-mail 'john at example' is not an address"),
    ("--voicemail-pin-required", "maybe", "voicemail PIN required 'maybe': true or false"),
])
def test_bad_mailbox_settings_are_refused(tg, boxes, option, value, said):
    assert tg("account", "update", JOHN, option, value) == 2
    assert tg.err.startswith("tollgate: ") and said in tg.err
    assert len(tg.err.splitlines()) == 1
    assert boxes.settings(JOHN) == MailboxSettings(JOHN, "", 100, 180, False, "")


def test_mailbox_settings_come_with_an_imported_tenant(tg, boxes, tmp_path):
    tenant = tmp_path / "tenant.yaml"
    tenant.write_text(f"""
accounts:
  - id: "{JOHN}"
    customer: Second Numbers
    product: Second Number
    voicemail_email: john@example.com
    voicemail_max_messages: 20
    voicemail_max_seconds: 120
    voicemail_pin_required: true
""")
    assert tg("import", str(tenant)) == 0, tg.err
    assert boxes.settings(JOHN) == MailboxSettings(JOHN, "john@example.com", 20, 120, True, "")
    assert tg("account", "update", JOHN, "--voicemail-email", "") == 0
    assert boxes.settings(JOHN).email == ""
    assert tg("--json", "account", "show", JOHN) == 0
    assert json.loads(tg.out)["voicemail_max_messages"] == 20
