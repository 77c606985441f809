"""Auth ID building for the pass-through IVR (stand-in until billing.authid lands).

The seeds' example: Mark's phone, associated number 1778555, code 4545 -> `1778555#4545`.
"""
from __future__ import annotations


def build_auth_id(account: dict, code: str, settings: dict) -> str:
    """The alias ID a collected code names, per the application's authorization options."""
    if settings.get("use_associated_number") and account.get("associated_number"):
        return f"{account['associated_number']}#{code}"
    if settings.get("auth_code_as_account_id"):
        return f"{account['id']}#{code}"
    return code
