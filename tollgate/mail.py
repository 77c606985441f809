"""E-mails through the SMTP relay of the settings (smtp_*): plain text, optionally with
files attached (a voicemail message's WAV), one message per call, the relay's refusal
raised to the caller (who retries later).

With no relay configured (smtp_host empty) a message is logged, not sent, and counts as
delivered: an operator who wants the e-mails sets the relay.
"""
from __future__ import annotations

import logging
import smtplib
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from tollgate.config import Settings

log = logging.getLogger("tollgate.mail")

# what send() raises when the relay cannot take the message
MailError = (smtplib.SMTPException, OSError)


@dataclass(frozen=True)
class Attachment:
    """A file sent with a message, e.g. Attachment("message.wav", data, "audio", "wav")."""
    filename: str
    content: bytes
    maintype: str = "application"
    subtype: str = "octet-stream"


class Mailer:
    """Sends plain-text messages, with or without attachments, through one SMTP relay."""

    def __init__(self, settings: Settings):
        self.settings = settings

    def send(self, to: str, subject: str, body: str,
             attachments: Sequence[Attachment] = ()) -> bool:
        """Send one message; False when no relay is configured (logged instead)."""
        s = self.settings
        if not s.smtp_host:
            log.warning("MAIL: no SMTP relay (smtp_host) set; not sent to %s: %s", to, subject)
            return False
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = s.smtp_from, to, subject
        msg["Date"], msg["Message-ID"] = formatdate(localtime=False), make_msgid("tollgate")
        msg.set_content(body)
        for item in attachments:
            msg.add_attachment(item.content, maintype=item.maintype, subtype=item.subtype,
                               filename=item.filename)
        with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout) as smtp:
            if s.smtp_starttls:
                smtp.starttls()
            if s.smtp_user:
                smtp.login(s.smtp_user, s.smtp_password)
            smtp.send_message(msg)
        log.info("MAIL: sent to %s: %s", to, subject)
        return True
