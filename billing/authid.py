"""Auth ID of a pass-through IVR: who pays for a toll call placed from a shared phone.

With "Use associated number to produce auth ID" the code is appended to the caller
account's associated number (`1778555` + `4545` -> `1778555#4545`, an alias of Rachel's
account); without it the code alone is the auth ID. With "Treat auth code as part of
account ID" the auth ID names the payer's account or alias; without it the auth ID is only
a PIN the caller's own account must match (its service password), and the caller pays.
"""
from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SEPARATOR = "#"
DEFAULT_MIN_LENGTH = 4
DEFAULT_MAX_LENGTH = 4


class AuthCodeError(ValueError):
    """A collected code (or the setup around it) that cannot produce an auth ID."""


@dataclass(frozen=True)
class AuthId:
    """What the IVR looks up: `value`, as an account/alias ID when `is_account_id`."""
    value: str
    is_account_id: bool


def check_code(code: str, min_length: int = DEFAULT_MIN_LENGTH,
               max_length: int = DEFAULT_MAX_LENGTH) -> str:
    """The code when it is digits only and min..max long, else AuthCodeError."""
    if not isinstance(code, str) or not code.isascii() or not code.isdigit():
        raise AuthCodeError("auth code must be digits")
    if not min_length <= len(code) <= max_length:
        raise AuthCodeError(f"auth code must have {min_length}..{max_length} digits")
    return code


def build_auth_id(account: Mapping[str, Any], code: str, settings: Mapping[str, Any]) -> AuthId:
    """The auth ID for `code` collected on `account`'s phone under an app's `settings`."""
    code = check_code(code, int(settings.get("min_auth_code_length", DEFAULT_MIN_LENGTH)),
                      int(settings.get("max_auth_code_length", DEFAULT_MAX_LENGTH)))
    as_account = bool(settings.get("auth_code_as_account_id", False))
    if not settings.get("use_associated_number", False):
        return AuthId(code, as_account)
    associated = account.get("associated_number") or ""
    if not associated:
        # an empty prefix would turn "#4545" into a guessable ID shared by every tenant
        raise AuthCodeError(f"account {account.get('id')} has no associated number")
    return AuthId(f"{associated}{SEPARATOR}{code}", as_account)


def matches_own_pin(account: Mapping[str, Any], auth_id: AuthId) -> bool:
    """For a non-account auth ID: the caller's service password equals it."""
    expected = account.get("service_password") or ""
    # constant-time: the IVR is a PIN oracle otherwise
    return (not auth_id.is_account_id and bool(expected)
            and hmac.compare_digest(expected.encode(), auth_id.value.encode()))
