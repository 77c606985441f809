"""The voicemail message store (second-number-service.txt): WAV files under
<var>/voicemail/<account>/, one `voicemail_messages` row each, and the mailbox settings of
the account (migration 0014).

The IVR records a caller's message to recording_path() and deposits it. A deposit is
spooled first (a JSON sidecar in <var>/voicemail/spool/), then inserted, then unspooled: a
message recorded while PostgreSQL is down is kept and inserted by replay() later, once
(the row's message_key is a digest of the account and the recording's Call-ID). While a
deposit or a replay handles a sidecar it holds an flock on it, so two IVR workers sharing
the folder never file one message twice.

Plain Python and psycopg 3: each thread gets a connection of its own, opened on first use
and again after a failure, with short timeouts (the IVR calls in from its threads).
"""
from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import logging
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psycopg

from tollgate.config import Settings
from tollgate.mail import Attachment, Mailer

log = logging.getLogger("tollgate.voicemail")

CONNECT_TIMEOUT_S = 2
STATEMENT_TIMEOUT_MS = 3000
DIR_MODE = 0o750
MAX_CALLER = 64
# what of a caller's CLI is kept (the rest of what the network sent is dropped)
_NOT_CALLER = re.compile(r"[^0-9A-Za-z+*#._@-]")
_ACCOUNT = re.compile(r"[A-Za-z0-9._+-]{1,64}")
# a new message, a message filed before (same key), a failure to retry, a deposit to drop
NEW, PRESENT, RETRY, DROPPED = "new", "present", "retry", "dropped"

INSERT = """
INSERT INTO voicemail_messages
       (message_key, account_id, caller, received_at, duration, path, size_bytes)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (message_key) DO NOTHING RETURNING id"""
SETTINGS = """
SELECT coalesce(voicemail_email, ''), voicemail_max_messages, voicemail_max_seconds,
       voicemail_pin_required, coalesce(language, '')
  FROM accounts WHERE id = %s"""
FULL = """
SELECT a.voicemail_max_messages <= (SELECT count(*) FROM voicemail_messages m
                                     WHERE m.account_id = a.id)
  FROM accounts a WHERE a.id = %s"""
MESSAGES = """
SELECT id, account_id, caller, received_at, duration, heard, path FROM voicemail_messages
 WHERE account_id = %s AND (%s::boolean IS NULL OR heard = %s::boolean)
 ORDER BY received_at, id"""
COUNTS = """
SELECT count(*) FILTER (WHERE NOT heard), count(*) FILTER (WHERE heard)
  FROM voicemail_messages WHERE account_id = %s"""
# a message id PostgreSQL can hold (bigserial); another number names no message
MAX_ID = 2**63 - 1


class MailboxUnavailable(Exception):
    """PostgreSQL is unreachable (or did not answer in time)."""


@dataclass(frozen=True)
class MailboxSettings:
    account: str
    email: str            # '' = no e-mail
    max_messages: int     # messages kept, new and saved
    max_seconds: int      # longest message
    pin_required: bool    # the owner reaching the mailbox by ANI keys the service password
    language: str         # the account's language, or ''


@dataclass(frozen=True)
class Deposit:
    """A message the IVR recorded; key is unique per message (the session's Call-ID)."""
    key: str
    account: str
    caller: str            # '' = anonymous
    received_at: datetime  # tz-aware UTC
    duration: int          # whole seconds
    path: Path             # the WAV, under Mailboxes.recording_path()


@dataclass(frozen=True)
class Message:
    id: int
    account: str
    caller: str
    received_at: datetime
    duration: int
    heard: bool
    path: Path


def clean_caller(caller: str | bytes) -> str:
    """A caller's CLI as stored: the characters of a number or SIP user, at most 64."""
    text = caller.decode("latin-1") if isinstance(caller, bytes) else str(caller)
    return _NOT_CALLER.sub("", text)[:MAX_CALLER]


def message_key(account: str, key: str | bytes) -> str:
    """The stored key and file name of a message: any bytes in, 32 hex digits out."""
    raw = key if isinstance(key, bytes) else str(key).encode("utf-8", "surrogatepass")
    return hashlib.sha256(account.encode() + b"\n" + raw).hexdigest()[:32]


def _is_account(account: object) -> bool:
    """Spelled like an account ID, and one safe folder name (never . or ..)."""
    return isinstance(account, str) and _ACCOUNT.fullmatch(account) is not None and \
        set(account) != {"."}


def check_account(account: str) -> str:
    """An account ID that is one safe folder name; ValueError otherwise."""
    if not _is_account(account):
        raise ValueError(f"voicemail: not an account ID: {account!r}")
    return account


def _utc(when: datetime) -> datetime:
    """A deposit's time as aware UTC (a naive time is taken as UTC)."""
    if when.tzinfo is None:
        return when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc)


class Mailboxes:
    """Every account's mailbox: files under <var>/voicemail, rows in PostgreSQL."""

    def __init__(self, settings: Settings, dsn: str | None = None):
        self.root = settings.var_path / "voicemail"
        self.spool = self.root / "spool"
        self.rejected = self.spool / "rejected"
        self.dsn = dsn or settings.pg_dsn
        self.mailer = Mailer(settings)
        self._local = threading.local()
        self._opened: list[psycopg.Connection] = []
        self._opened_lock = threading.Lock()

    # --- files -----------------------------------------------------------------------

    def _folder(self, account: str) -> Path:
        folder = self.root / check_account(account)
        for path in (self.root, folder):
            path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        return folder

    def recording_path(self, account: str, key: str) -> Path:
        """Where the IVR records the message of this key (the key may hold any bytes)."""
        return self._folder(account) / f"{message_key(account, key)}.wav"

    def greeting_path(self, account: str) -> Path:
        """The account's own greeting (the file may not exist)."""
        return self._folder(account) / "greeting.wav"

    def _relative(self, path: Path) -> str:
        """A recording's path as stored: relative to the root, which it may not leave."""
        return str(Path(os.path.abspath(path)).relative_to(self.root))

    def _absolute(self, stored: str) -> Path:
        """A stored path under the root; ValueError when it would lead out of it."""
        path = Path(os.path.abspath(self.root / stored))
        path.relative_to(self.root)
        return path

    # --- PostgreSQL ------------------------------------------------------------------

    def _conn(self) -> psycopg.Connection:
        conn: psycopg.Connection | None = getattr(self._local, "conn", None)
        if conn is not None and not conn.closed and not conn.broken:
            try:  # a restarted PostgreSQL leaves idle connections dead: ask before use
                conn.execute("SELECT 1")
            except psycopg.Error:
                self._drop()
                conn = None
        if conn is None or conn.closed or conn.broken:
            conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S,
                                   options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS}")
            self._local.conn = conn
            with self._opened_lock:
                self._opened = [c for c in self._opened if not c.closed] + [conn]
        return conn

    def _drop(self) -> None:
        """Forget this thread's connection after a failure: the next call reconnects."""
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            conn.close()

    @contextmanager
    def _db(self) -> Iterator[psycopg.Connection]:
        """This thread's connection; a PostgreSQL failure is raised as MailboxUnavailable."""
        try:
            yield self._conn()
        except psycopg.Error as exc:
            self._drop()
            log.warning("VOICEMAIL: PostgreSQL: %s", _first_line(exc))
            raise MailboxUnavailable(_first_line(exc)) from exc

    def close(self) -> None:
        """Close every thread's connection."""
        with self._opened_lock:
            opened, self._opened = self._opened, []
        for conn in opened:
            conn.close()

    # --- reads -----------------------------------------------------------------------

    def settings(self, account: str) -> MailboxSettings | None:
        """The account's mailbox settings; None for an unknown account."""
        if not _is_account(account):
            return None
        with self._db() as conn:
            row = conn.execute(SETTINGS, (account,)).fetchone()
        if row is None:
            return None
        email, most, longest, pin, language = row
        return MailboxSettings(account, email, most, longest, pin, language)

    def is_full(self, account: str) -> bool:
        """True when the mailbox holds its max_messages (an unknown account has no room)."""
        if not _is_account(account):
            return True
        with self._db() as conn:
            row = conn.execute(FULL, (account,)).fetchone()
        return row is None or bool(row[0])

    def messages(self, account: str, heard: bool | None = None) -> list[Message]:
        """The account's messages, oldest first: all, only new (False) or only saved (True)."""
        if not _is_account(account):
            return []
        with self._db() as conn:
            rows = conn.execute(MESSAGES, (account, heard, heard)).fetchall()
        return [Message(ident, owner, caller, _utc(received), duration, was_heard,
                        self.root / path)
                for ident, owner, caller, received, duration, was_heard, path in rows]

    def counts(self, account: str) -> tuple[int, int]:
        """(new, saved): messages not heard yet, and heard ones kept."""
        if not _is_account(account):
            return 0, 0
        with self._db() as conn:
            row = conn.execute(COUNTS, (account,)).fetchone()
        assert row is not None
        return int(row[0]), int(row[1])

    # --- changes ---------------------------------------------------------------------

    def mark_heard(self, message_id: int, account: str) -> bool:
        """Mark one of the account's messages heard (saved); False if it is not theirs."""
        if not 0 < int(message_id) <= MAX_ID or not _is_account(account):
            return False
        with self._db() as conn:
            row = conn.execute("UPDATE voicemail_messages SET heard = true"
                               " WHERE id = %s AND account_id = %s RETURNING id",
                               (int(message_id), account)).fetchone()
        return row is not None

    def delete(self, message_id: int, account: str) -> bool:
        """Delete one of the account's messages: the row (committed), then its file."""
        if not 0 < int(message_id) <= MAX_ID or not _is_account(account):
            return False
        with self._db() as conn:
            row = conn.execute("DELETE FROM voicemail_messages"
                               " WHERE id = %s AND account_id = %s RETURNING path",
                               (int(message_id), account)).fetchone()
        if row is None:
            return False
        # after the commit: a crash in between leaves a file without a row, never a row
        # without its file
        try:
            self._absolute(row[0]).unlink(missing_ok=True)
        except (OSError, ValueError) as exc:
            log.error("VOICEMAIL: message %s of %s deleted, its file %r not: %s",
                      message_id, account, row[0], exc)
        return True

    # --- deposits --------------------------------------------------------------------

    def deposit(self, d: Deposit) -> bool:
        """File a recorded message; True once committed, False when it could not be (a
        PostgreSQL failure keeps it spooled for replay()). Never raises for PostgreSQL;
        ValueError for a path outside the root or an account that is no folder name."""
        d = Deposit(d.key, check_account(d.account), clean_caller(d.caller),
                    _utc(d.received_at), max(0, int(d.duration)), Path(d.path))
        relative = self._relative(d.path)
        digest = message_key(d.account, d.key)
        try:
            fd = self._spool(digest, d, relative)
        except OSError as exc:  # a full disk: the message may still reach PostgreSQL
            log.error("[%s] VOICEMAIL: cannot spool the deposit for %s: %s",
                      _printable(d.key), d.account, exc)
            return self._file(d, digest, relative, None, -1) in (NEW, PRESENT)
        try:
            return self._file(d, digest, relative, self.spool / f"{digest}.json", fd) \
                in (NEW, PRESENT)
        finally:
            os.close(fd)

    def replay(self) -> list[Deposit]:
        """Insert every spooled deposit; returns those committed now for the first time
        (the IVR then notifies for them). Stops at the first PostgreSQL failure."""
        committed: list[Deposit] = []
        if not self.spool.is_dir():
            return committed
        for sidecar in sorted(self.spool.glob("*.json")):
            fd = _lock_existing(sidecar)
            if fd is None:
                continue  # filed meanwhile, or another worker is on it
            try:
                outcome, d = self._replay_one(sidecar, fd)
            finally:
                os.close(fd)
            if outcome == RETRY:
                break
            if outcome == NEW and d is not None:
                committed.append(d)
        return committed

    def _replay_one(self, sidecar: Path, fd: int) -> tuple[str, Deposit | None]:
        try:
            with os.fdopen(os.dup(fd), "rb") as f:
                data = json.loads(f.read())
            relative = str(data["path"])
            d = Deposit(str(data["key"]), check_account(str(data["account"])),
                        clean_caller(str(data["caller"])),
                        _utc(datetime.fromisoformat(str(data["received_at"]))),
                        max(0, int(data["duration"])), self._absolute(relative))
        except (ValueError, KeyError, TypeError, OSError) as exc:
            log.error("VOICEMAIL: spooled deposit %s unreadable (%s); set aside", sidecar, exc)
            self._reject(sidecar)
            return DROPPED, None
        return self._file(d, sidecar.stem, relative, sidecar, fd), d

    def _spool(self, digest: str, d: Deposit, relative: str) -> int:
        """Write the deposit's sidecar atomically; returns its fd, flock held."""
        self.spool.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        record = {"key": d.key, "account": d.account, "caller": d.caller,
                  "received_at": d.received_at.isoformat(), "duration": d.duration,
                  "path": relative}
        tmp = self.spool / f"{digest}.{os.getpid()}.{threading.get_ident()}.tmp"
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, json.dumps(record).encode("ascii"))
            os.fsync(fd)
            os.replace(tmp, self.spool / f"{digest}.json")
        except OSError:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        _sync_dir(self.spool)
        return fd

    def _file(self, d: Deposit, digest: str, relative: str, sidecar: Path | None,
              fd: int) -> str:
        """Insert one deposit and unspool it unless it is to be retried; the outcome."""
        tag = _printable(d.key)
        try:
            size = d.path.stat().st_size
        except OSError as exc:
            log.error("[%s] VOICEMAIL: the recording of %s is gone (%s); nothing filed",
                      tag, d.account, exc)
            _unlink_locked(sidecar, fd)
            return DROPPED
        try:
            with self._db() as conn:
                row = conn.execute(INSERT, (digest, d.account, d.caller, d.received_at,
                                            d.duration, relative, size)).fetchone()
        except MailboxUnavailable as exc:
            cause = exc.__cause__
            if isinstance(cause, (psycopg.IntegrityError, psycopg.DataError)):
                # the account is gone (or a value is refused): retrying cannot help
                log.error("[%s] VOICEMAIL: message for %s refused: %s; set aside",
                          tag, d.account, exc)
                if sidecar is not None:
                    self._reject(sidecar)
                return DROPPED
            log.warning("[%s] VOICEMAIL: message for %s %s", tag, d.account,
                        "kept for replay" if sidecar else "LOST (not spooled)")
            return RETRY
        _unlink_locked(sidecar, fd)
        log.info("[%s] VOICEMAIL: %s s from %s for %s %s", tag, d.duration,
                 d.caller or "anonymous", d.account, "filed" if row else "was filed before")
        return NEW if row else PRESENT

    def _reject(self, sidecar: Path) -> None:
        """Set a sidecar that can never be filed aside, for the operator."""
        self.rejected.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        try:
            os.replace(sidecar, self.rejected / sidecar.name)
        except OSError as exc:
            log.error("VOICEMAIL: cannot set %s aside: %s", sidecar, exc)

    # --- e-mail ----------------------------------------------------------------------

    def email(self, d: Deposit, to: str) -> bool:
        """E-mail the message with its WAV attached; False when no relay is set. Raises
        tollgate.mail.MailError when the relay refuses (or the WAV cannot be read)."""
        caller = clean_caller(d.caller) or "anonymous"
        when = _utc(d.received_at)
        subject = f"Voicemail from {caller} ({d.duration} s)"
        body = (f"A new voicemail message for {d.account}.\n\n"
                f"From:     {caller}\n"
                f"Received: {when:%Y-%m-%d %H:%M:%S} UTC\n"
                f"Length:   {d.duration} s\n\n"
                "The recording is attached (WAV).\n")
        name = f"voicemail-{when:%Y%m%d-%H%M%S}-{caller}.wav"
        wav = Attachment(name, Path(d.path).read_bytes(), "audio", "wav")
        return self.mailer.send(to, subject, body, [wav])


def _lock_existing(path: Path) -> int | None:
    """An fd of the file with its flock, when nobody else holds it and it is still there."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if os.fstat(fd).st_ino != os.stat(path).st_ino:
            raise FileNotFoundError(path)  # unspooled (or replaced) before we had the lock
    except OSError as exc:
        os.close(fd)
        if isinstance(exc, FileNotFoundError) or exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
            return None
        raise
    return fd


def _unlink_locked(sidecar: Path | None, fd: int) -> None:
    """Remove the sidecar we hold, unless it has been replaced by a newer one meanwhile."""
    if sidecar is None:
        return
    try:
        if os.stat(sidecar).st_ino == os.fstat(fd).st_ino:
            sidecar.unlink()
    except FileNotFoundError:
        pass


def _sync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _printable(text: Any) -> str:
    """Network text for a log line: printable ASCII, at most 80 characters."""
    return "".join(ch if " " <= ch <= "~" else "?" for ch in str(text))[:80]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
