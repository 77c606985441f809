"""The IVR's voicemail store (ivr.apps.voicemail.Store): messages and greetings through
provisioning/voicemail.py, and what follows a new message, off the media loop.

A message is a WAV file first: the voicemail app records it, then `deposit` hands it to
the keeper thread, which commits its metadata to PostgreSQL (a spool file keeps it while
PostgreSQL is down, replayed every few seconds), then tells the owner: a message-summary
NOTIFY to the account's registered phones (MWI, through Kamailio) and, when the mailbox
has an address, an e-mail with the recording attached. The loop never waits on any of it.
"""
from __future__ import annotations

import logging
import os
import queue
import secrets
import socket
import threading
from datetime import datetime, timezone
from pathlib import Path

from billing import internal
from ivr import metrics
from ivr.apps import voicemail as app
from ivr.services import Services
from provisioning import voicemail as store
from tollgate.config import Settings
from tollgate.directory import Record

log = logging.getLogger("ivr.mailboxes")

REPLAY_EVERY_S = 5.0
DEFAULT_MAX_SECONDS = 180   # accounts.voicemail_max_seconds's default
MWI_APP = internal.APP_MWI


class Mailboxes:
    """One per IVR process."""

    def __init__(self, settings: Settings, services: Services, secret: bytes):
        self.settings, self.services = settings, services
        self.store = store.Mailboxes(settings)
        self.mwi = MessageWaiting(settings, secret)
        self.jobs: queue.Queue[tuple[str, object]] = queue.Queue()
        self.thread = threading.Thread(target=self._keep, name="mailboxes", daemon=True)
        self.stopping = False

    def start(self) -> None:
        self.thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Finish what is queued (a deposit not committed stays in the spool)."""
        self.stopping = True
        self.jobs.put(("stop", None))
        self.thread.join(timeout)

    # what the apps read (in the loop: PostgreSQL answers or MailboxUnavailable)
    def account(self, account_id: str) -> Record | None:
        return self.services.account(account_id) if account_id else None

    def _settings(self, account_id: str) -> store.MailboxSettings:
        found = self.store.settings(account_id)
        if found is None:
            raise store.MailboxUnavailable(f"no mailbox {account_id}")
        return found

    def pin_required(self, account_id: str) -> bool:
        return self._settings(account_id).pin_required

    def max_seconds(self, account_id: str) -> int:
        try:
            return self._settings(account_id).max_seconds
        except store.MailboxUnavailable as exc:  # the message is taken all the same
            log.warning("[-] VOICEMAIL: %s: the default longest message", exc)
            return DEFAULT_MAX_SECONDS

    def is_full(self, account_id: str) -> bool:
        """With PostgreSQL down the mailbox takes the message (spooled): a lost call
        costs the owner more than a mailbox one message over its quota."""
        try:
            return self.store.is_full(account_id)
        except store.MailboxUnavailable as exc:
            log.warning("[-] VOICEMAIL: quota of %s not known: %s", account_id, exc)
            return False

    def recording_path(self, account_id: str, key: str) -> Path:
        return self.store.recording_path(account_id, key)

    def greeting_path(self, account_id: str) -> Path:
        return self.store.greeting_path(account_id)

    def messages(self, account_id: str, heard: bool) -> list[app.Message]:
        return [app.Message(m.id, m.caller, m.received_at, m.duration, m.heard, m.path)
                for m in self.store.messages(account_id, heard=heard)]

    def counts(self, account_id: str) -> tuple[int, int]:
        return self.store.counts(account_id)

    # what the apps write
    def deposit(self, account_id: str, key: str, caller: str, seconds: int, path: Path) -> None:
        deposit = store.Deposit(key=key, account=account_id, caller=caller,
                                received_at=datetime.now(timezone.utc), duration=seconds,
                                path=path)
        metrics.VOICEMAILS.labels("recorded").inc()
        self.jobs.put(("deposit", deposit))

    def discard(self, path: Path) -> None:
        path.unlink(missing_ok=True)

    def mark_heard(self, message_id: int, account_id: str) -> bool:
        return self.store.mark_heard(message_id, account_id)

    def delete(self, message_id: int, account_id: str) -> bool:
        return self.store.delete(message_id, account_id)

    def save_greeting(self, account_id: str, recorded: Path) -> bool:
        try:
            os.replace(recorded, self.store.greeting_path(account_id))
        except OSError as exc:
            log.error("[-] VOICEMAIL: greeting of %s not saved: %s", account_id, exc)
            return False
        return True

    def set_password(self, account_id: str, password: str) -> bool:
        return self.services.set_service_password(account_id, password)

    def notify(self, account_id: str) -> None:
        self.jobs.put(("mwi", account_id))

    def failures(self, key: str) -> int:
        return self.services.failures(key)

    def record_failure(self, key: str) -> int:
        return self.services.record_failure(key, app.LOCKOUT_S)

    # the keeper thread
    def _keep(self) -> None:
        while True:
            try:
                kind, arg = self.jobs.get(timeout=REPLAY_EVERY_S)
            except queue.Empty:
                kind, arg = "replay", None
            try:
                if kind == "stop":
                    return
                if kind == "deposit":
                    assert isinstance(arg, store.Deposit)
                    self._commit(arg)
                elif kind == "mwi":
                    self._message_waiting(str(arg))
                else:
                    for deposit in self.store.replay():
                        metrics.VOICEMAILS.labels("replayed").inc()
                        self._tell_owner(deposit)
            except Exception:  # one bad job never stops the keeper
                log.exception("[-] VOICEMAIL: %s failed", kind)

    def _commit(self, deposit: store.Deposit) -> None:
        if not self.store.deposit(deposit):
            metrics.VOICEMAILS.labels("spooled").inc()
            log.warning("[%s] VOICEMAIL: PostgreSQL unavailable, message of %s spooled",
                        deposit.key, deposit.account)
            return
        metrics.VOICEMAILS.labels("stored").inc()
        log.info("[%s] VOICEMAIL: %d s message for %s stored", deposit.key, deposit.duration,
                 deposit.account)
        self._tell_owner(deposit)

    def _tell_owner(self, deposit: store.Deposit) -> None:
        self._message_waiting(deposit.account)
        settings = self.store.settings(deposit.account)
        if settings is None or not settings.email:
            return
        try:
            sent = self.store.email(deposit, settings.email)
        except Exception as exc:  # the relay refused or is unreachable:: the message stays stored
            metrics.VOICEMAILS.labels("email_failed").inc()
            log.warning("[%s] VOICEMAIL: e-mail to %s failed: %s", deposit.key, settings.email,
                        exc)
            return
        if sent:
            metrics.VOICEMAILS.labels("emailed").inc()

    def _message_waiting(self, account_id: str) -> None:
        new, saved = self.store.counts(account_id)
        self.mwi.send(account_id, new, saved)


class MessageWaiting:
    """Unsolicited message-summary NOTIFYs (RFC 3842) to an account's registered phones:
    sent to Kamailio, signed like every internal request, and forked there to each
    contact of the account. Fire and forget: a phone that misses one gets the next."""

    def __init__(self, settings: Settings, secret: bytes):
        self.settings, self.secret = settings, secret
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((settings.ivr_address, 0))
        self.sock.setblocking(False)

    def request(self, account_id: str, new: int, saved: int) -> bytes:
        s = self.settings
        port = self.sock.getsockname()[1]
        call_id = f"mwi-{secrets.token_hex(12)}@{s.ivr_address}"
        signed = internal.sign(self.secret, call_id, internal.Internal(
            account=account_id, dest=account_id, session=call_id, app=MWI_APP),
            ttl=s.internal_header_ttl)
        body = (f"Messages-Waiting: {'yes' if new else 'no'}\r\n"
                f"Message-Account: sip:{account_id}@{s.sip_domain}\r\n"
                f"Voice-Message: {new}/{saved} (0/0)\r\n")
        lines = [f"NOTIFY sip:{account_id}@{s.sip_address}:{s.sip_port} SIP/2.0",
                 f"Via: SIP/2.0/UDP {s.ivr_address}:{port};rport;"
                 f"branch=z9hG4bK{secrets.token_hex(10)}",
                 "Max-Forwards: 70",
                 f"From: <sip:voicemail@{s.ivr_address}>;tag={secrets.token_hex(6)}",
                 f"To: <sip:{account_id}@{s.sip_domain}>",
                 f"Call-ID: {call_id}", "CSeq: 1 NOTIFY", "Event: message-summary",
                 "Subscription-State: active",
                 "Content-Type: application/simple-message-summary",
                 *(f"{name}: {value}" for name, value in signed.items()),
                 f"Content-Length: {len(body)}", "", body]
        return "\r\n".join(lines).encode()

    def send(self, account_id: str, new: int, saved: int) -> None:
        self._drain()
        try:
            self.sock.sendto(self.request(account_id, new, saved),
                             (self.settings.sip_address, self.settings.sip_port))
        except OSError as exc:
            log.warning("[-] MWI: not sent for %s: %s", account_id, exc)
            return
        metrics.MWI.inc()
        log.info("[-] MWI: %s has %d new, %d saved messages", account_id, new, saved)

    def _drain(self) -> None:
        """Replies to earlier NOTIFYs (nobody waits for them)."""
        while True:
            try:
                self.sock.recv(65536)
            except (BlockingIOError, OSError):
                return
