"""Every Redis key tollgate reads or writes, and the shape of its value: the one place a
key's name is spelled (tests/unit/test_keyspace.py fails on a "tg:" literal elsewhere).

PostgreSQL is the truth; these keys are its projection (written by provisioning.loader),
counters, and the xDR stream. Records are msgpack maps built by provisioning.loader's
*_record functions; money is decimal text, never a float.
"""
from __future__ import annotations

PREFIX = "tg:"

# --- projection of provisioning data (provisioning.loader writes, caches read) ----------


def customer(customer_id: object) -> str:
    """msgpack map: the customer record (loader.customer_record)."""
    return f"tg:customer:{customer_id}"


def account(account_id: object) -> str:
    """msgpack map: the account record (loader.account_record)."""
    return f"tg:account:{account_id}"


def alias(alias_id: object) -> str:
    """msgpack map: {id, account_id, allow_auth}."""
    return f"tg:alias:{alias_id}"


def product(product_id: object) -> str:
    """msgpack map: the product with its rating entries, plain calls first."""
    return f"tg:product:{product_id}"


def tariff(tariff_id: object) -> str:
    """msgpack map: the tariff record."""
    return f"tg:tariff:{tariff_id}"


def rates(tariff_id: object) -> str:
    """hash: prefix -> msgpack rate map (billing.rating.Rate.from_record)."""
    return f"tg:rates:{tariff_id}"


def rates_staging(tariff_id: object) -> str:
    """hash: a rate table being rebuilt by resync, RENAMEd over rates() when complete."""
    return f"tg:resync:rates:{tariff_id}"


def app(app_id: object) -> str:
    """msgpack map: the voice application with its settings and access numbers."""
    return f"tg:app:{app_id}"


def sip_domain(name: object) -> str:
    """msgpack map {customer_id}: the client whose SIP domain this is (its accounts log in
    there by their extensions, aliases <extension>@<domain>)."""
    return f"tg:domain:{name}"


def access_number(number: object) -> str:
    """msgpack map {app_id}: the voice application the access number reaches."""
    return f"tg:accessnum:{number}"


# --- money ------------------------------------------------------------------------------


def balance(scope: str, ident: object) -> str:
    """string: the balance of an account or customer (decimal text, as in PostgreSQL)."""
    return f"tg:bal:{scope}:{ident}"


def reservations(scope: str, ident: object) -> str:
    """hash: Call-ID -> "<micro units>:<expiry unix ms>", the funds live calls hold."""
    return f"tg:resv:{scope}:{ident}"


def daily_spent(customer_id: object, day: str) -> str:
    """string with a TTL: a client's external outbound spend on one day of its timezone
    (decimal text; written by the xDR writer from PostgreSQL's daily_usage)."""
    return f"tg:daily:{customer_id}:{day}"


RECORDINGS = "tg:recordings"     # list: msgpack {call_id, customer_id, account, cli, cld,
#                                  setup_ts} of recorded calls that ended (xDR writer files them)
DAILY_SPENT_TTL_S = 3 * 86400    # a day's spend outlives the day in any timezone
DAILY_REACHED = "tg:daily:reached"   # set: "<customer id>:<day>" whose limit was reached

# every projection key, as SCAN patterns (resync drops what PostgreSQL no longer has)
PROJECTION_PATTERNS = tuple(f("*") for f in (customer, account, alias, product, tariff,
                                            rates, app, access_number, sip_domain)) + (
    balance("account", "*"), balance("customer", "*"))

# --- cache coherence --------------------------------------------------------------------

GENERATION = "tg:gen"            # integer, INCR on every provisioning write and resync
INVALIDATE = "tg:invalidate"     # pub/sub channel: each changed key, or "*", then "#<gen>"
FIELD_MESSAGES_MAX = 1000        # a hash with more changed fields is announced as a whole


def rate_field(tariff_id: object, prefix: str) -> str:
    """Invalidation message: one prefix of rates(tariff_id) changed."""
    return f"{rates(tariff_id)}#{prefix}"

# --- counters and one-time marks --------------------------------------------------------


def call_slots(customer_id: object) -> str:
    """hash: Call-ID -> expiry unix ms, the external calls a client has in progress
    (virtual PBX "Max calls"; billing/slots.lua takes, tollgate/slots.py gives back)."""
    return f"tg:slots:customer:{customer_id}"


def recording_keys(call_id: str) -> str:
    """hash with the call's TTL: a call whose client starts on-demand recording with a code
    keyed during the call (RFC 4733 digits, reported by rtpengine): customer, media_set
    (Kamailio writes them when it relays the call), keys (the last ones pressed) and
    recorded ("1" once rtpengine records; tollgate/recording_keys.py writes both)."""
    return f"tg:reckeys:{call_id}"


def pin_failures(account_id: object) -> str:
    """integer with a TTL: wrong auth codes keyed in from this account's phones."""
    return f"tg:pinfail:{account_id}"


def called(account_id: object) -> str:
    """string, no TTL: the account has had an answered outgoing call (prepaid first-call
    access codes; PostgreSQL's accounts.first_use is set by the xDR writer)."""
    return f"tg:called:{account_id}"


def signature_used(nonce: str) -> str:
    """string with a TTL: an internal-header signature's nonce already accepted once."""
    return f"tg:sigused:{nonce}"


# --- xDR stream -------------------------------------------------------------------------

XDR_STREAM = "tg:xdr"            # stream: field "m" = msgpack xDR event (billing.xdr)
XDR_DEAD = "tg:xdr:dead"         # stream: events the writer could not bill, with the error
