"""Signed internal headers between Kamailio and the IVR.

Kamailio trusts internal headers only from a configured IVR address *and* with a valid
HMAC-SHA256 over the Call-ID and every header value, bound to an expiry time and a nonce:
the receiver accepts each nonce once, so a captured signed INVITE cannot be sent again.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

PREFIX = "X-TG-"
PREFIX_MATCH = "x-tg"         # any header whose lower-cased name starts so is internal
ACCOUNT = "X-TG-Account"      # the account of the phone that placed the call (Mark)
AUTH_ID = "X-TG-Auth-ID"      # the auth ID the IVR built (1778555#4545); empty toward the IVR
DEST = "X-TG-Dest"            # the number originally dialed
SESSION = "X-TG-Session"      # session ID shared by every leg of one call (first Call-ID)
APP = "X-TG-App"              # voice application id
ANI = "X-TG-ANI"              # the caller's number as Kamailio vouches for it (access numbers)
ACCESS_CODE = "X-TG-Access-Code"  # the rating entry a toll leg is rated by ("" = plain calls)
# a refused call the IVR explains (voice notifications): "<code>;<locution>;<reason>"
NOTIFY = "X-TG-Notify"
# X-TG-App values that are no operator's application: Kamailio's own choices
APP_VOICEMAIL_DEPOSIT = "vm-deposit"   # leave a message in the account's mailbox
APP_VOICEMAIL_ACCESS = "vm-access"     # the account's mailbox (its owner's number calling)
APP_VOICEMAIL_PHONE = "vm-phone"       # the account's mailbox from its own phone (*98)
APP_MWI = "mwi"                        # the IVR's message-waiting NOTIFY for the account
# the most seconds the IVR asks Kamailio to authorize its toll leg for ("" = as funds
# allow): a call-back's leg A leaves the caller's funds for leg B too
CAP = "X-TG-Cap"
EXPIRES = "X-TG-Expires"      # unix time in milliseconds after which the signature is void
NONCE = "X-TG-Nonce"          # random, unique per signature: a signature is good once
SIGNATURE = "X-TG-Sig"        # hex HMAC-SHA256
# in the 2xx Kamailio relays to the IVR for a toll leg: the seconds it authorized (unsigned:
# only Kamailio can reach the IVR, and it strips every X-TG header from the far end's reply)
MAX_DURATION = "X-TG-Max-Duration"
SIGNED = (ACCOUNT, AUTH_ID, DEST, SESSION, APP, ANI, ACCESS_CODE, NOTIFY, CAP, EXPIRES, NONCE)


@dataclass(frozen=True)
class Internal:
    """The values one internal hop carries."""
    account: str
    dest: str
    session: str
    auth_id: str = ""
    app: str = ""
    ani: str = ""
    access_code: str = ""
    notify: str = ""
    cap: str = ""         # seconds (digits), "" = no cap of the IVR's
    nonce: str = ""
    expires: int = 0      # unix time in milliseconds


def _mac(secret: bytes, call_id: str, values: dict[str, str]) -> str:
    msg = "\x1f".join([call_id] + [values.get(h, "") for h in SIGNED]).encode()
    return hmac.new(secret, msg, hashlib.sha256).hexdigest()


def sign(secret: bytes, call_id: str, data: Internal, ttl: float = 60,
         now: float | None = None) -> dict[str, str]:
    """Headers (name -> value) carrying `data` for the request with this Call-ID."""
    values = {ACCOUNT: data.account, AUTH_ID: data.auth_id, DEST: data.dest,
              SESSION: data.session, APP: data.app, ANI: data.ani,
              ACCESS_CODE: data.access_code, NOTIFY: data.notify, CAP: data.cap,
              EXPIRES: str(int(((time.time() if now is None else now) + ttl) * 1000)),
              NONCE: data.nonce or secrets.token_hex(16)}
    values[SIGNATURE] = _mac(secret, call_id, values)
    return values


def verify(secret: bytes, call_id: str, headers: dict[str, str],
           now: float | None = None) -> Internal | None:
    """The carried values when signature and expiry hold, else None."""
    sig = headers.get(SIGNATURE, "")
    expires = headers.get(EXPIRES, "")
    if not sig or not expires.isdigit():
        return None
    if int(expires) < (time.time() if now is None else now) * 1000:
        return None
    if not hmac.compare_digest(sig, _mac(secret, call_id, headers)):
        return None
    return Internal(account=headers.get(ACCOUNT, ""), dest=headers.get(DEST, ""),
                    session=headers.get(SESSION, ""), auth_id=headers.get(AUTH_ID, ""),
                    app=headers.get(APP, ""), ani=headers.get(ANI, ""),
                    access_code=headers.get(ACCESS_CODE, ""), notify=headers.get(NOTIFY, ""),
                    cap=headers.get(CAP, ""), nonce=headers.get(NONCE, ""),
                    expires=int(expires))



def notice(code: int, locution: str, reason: str) -> str:
    """The X-TG-Notify value of a refusal the IVR explains."""
    return f"{code};{locution};{reason}"


def parse_notice(value: str) -> tuple[int, str, str] | None:
    """(code, locution, reason) of an X-TG-Notify value; None when malformed."""
    code, _, rest = value.partition(";")
    locution, _, reason = rest.partition(";")
    if not (code.isdigit() and 400 <= int(code) <= 699 and locution.isidentifier() and reason):
        return None
    return int(code), locution, reason
