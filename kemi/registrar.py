"""Digest authentication against cached account records, and REGISTER."""
from __future__ import annotations

import secrets

import KSR

from kemi import log, message
from kemi.constants import EXIT, HT_AUTHFAIL, HT_IPBAN, REASON_AUTH
from kemi.runtime import Runtime
from tollgate import metrics
from tollgate.directory import Identity, Record

# pv_auth_check results that mean "ask (again)" rather than "wrong"
_CHALLENGE_AGAIN = {-4, -5, -6}
_BAN_AFTER = 10  # failed authentications from one source before it is banned


def register(rt: Runtime) -> int | None:
    """REGISTER: authenticate as an account (or an alias that may), then save the contact."""
    if not KSR.is_REGISTER():
        return None
    identity = authenticate(rt)
    if identity is None:
        return EXIT
    if rt.req.domain:  # an extension of a client's domain: its contacts under the account
        saved = KSR.registrar.save_uri("location", 0,
                                       f"sip:{identity.account['id']}@{rt.settings.sip_domain}")
    else:
        saved = KSR.registrar.save("location", 0)
    if saved < 0:
        KSR.sl.sl_reply_error()
    metrics.REGISTRATIONS.labels("ok").inc()
    log.info("REGISTER", f"{identity.account['id']} registered")
    return EXIT


def authenticate(rt: Runtime) -> Identity | None:
    """The identity proven by the request's digest credentials; None after answering.

    Unknown IDs, aliases without "allow authentication", blocked accounts and wrong
    passwords all get the same 403, so nobody can enumerate accounts.
    """
    domain = (message.pv("$fd") or "").lower()
    client = rt.directory.domain_client(domain) if domain != rt.settings.sip_domain else None
    rt.req.domain = domain if client is not None else ""
    realm = rt.req.domain or rt.settings.sip_domain  # a client's own domain is its realm
    user = KSR.pv.get("$au")
    if not user:
        KSR.auth.auth_challenge(realm, 0)
        return None
    identity = login(rt, user, client)
    usable = identity is not None and identity.allow_auth and not identity.account.get("blocked")
    password = identity.account.get("password") if identity is not None and usable else None
    # an unusable ID is checked against a random password: same work, same answer
    result = KSR.auth.pv_auth_check(realm, password or secrets.token_hex(16), 0, 1)
    if result > 0 and usable:
        KSR.auth.consume_credentials()
        return identity
    if result in _CHALLENGE_AGAIN:
        KSR.auth.auth_challenge(realm, 0)
        return None
    _count_failure(rt)
    metrics.REFUSALS.labels("403", REASON_AUTH).inc()
    if KSR.is_REGISTER():
        metrics.REGISTRATIONS.labels("failed").inc()
    log.warn("AUTH", f"failed for {user!r} from {KSR.pv.get('$si')} ({result})")
    KSR.sl.sl_send_reply(403, "Forbidden")
    return None


def login(rt: Runtime, user: str, client: Record | None) -> Identity | None:
    """Who `user` names: in a client's SIP domain one of its extensions (or its own
    account IDs); in the platform's domain an account or alias of a client that has no
    domain of its own. Anything else names nobody (the same 403 as a wrong password)."""
    if client is not None:
        found = rt.directory.extension(user, rt.req.domain) or rt.directory.identity(user)
        if found is None or found.account.get("customer_id") != client.get("id"):
            return None
        return found
    found = rt.directory.identity(user)
    if found is None:
        return None
    owner_id = found.account.get("customer_id")
    owner = rt.directory.customer(owner_id) if owner_id is not None else None
    return None if owner is not None and owner.get("sip_domain") else found


def _count_failure(rt: Runtime) -> None:
    """Repeated failures from one source ban it for a while (trusted peers exempt)."""
    source = KSR.pv.get("$si")
    if source in rt.trusted:
        return
    failures = KSR.htable.sht_inc(HT_AUTHFAIL, source)  # atomic: workers race here
    if failures >= _BAN_AFTER:
        KSR.htable.sht_seti(HT_IPBAN, source, 1)
        log.warn("AUTH", f"{source} banned after {_BAN_AFTER} failures")
