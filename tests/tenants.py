"""Tenants a test makes for itself: unique numbers, provisioned through the CLI's YAML import
(one transaction, as an operator would), so tests never share accounts, balances, PIN
failure counters or locks, and pass alone and in any order.

    office = tenants.office(tg)                  # the seeds' Rachel 4545, Mark 8989, Jake 1211
    office.mark.id, office.mark.password         # Mark's SIP login
    office.rachel.auth_id                        # <associated number>#4545
    tenants.office(tg, style=tenants.IP_CENTREX)  # the IP Centrex variant
    tenants.office(tg, credit_limits={"rachel": "0.02"}, rates={"1999": ("0.60", "1/1")})

Every tenant gets an associated number of its own (1997NNNN, counted per process), and its
accounts are that number followed by four digits, as the seeds' 1778555 + 1209: never a
demo account, never a number the scenarios dial (those have 11 digits, these 12).
"""
from __future__ import annotations

import csv
import io
import itertools
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import yaml

CLOUD_PBX = "cloud-pbx"      # personalized-cloud-pbx-calling.txt
IP_CENTREX = "ip-centrex"    # personalized-ip-centrex-calling.txt

# the seeds' people: the last four digits of their numbers, and their PINs
SUFFIXES = {CLOUD_PBX: {"rachel": "1209", "mark": "1210", "jake": "1211"},
            IP_CENTREX: {"rachel": "7777", "mark": "8888", "jake": "9999"}}
PINS = {"rachel": "4545", "mark": "8989", "jake": "1211"}
SEEDS_PEOPLE = ("rachel", "mark", "jake")

# the demo tenant's tariff: North America paid per started minute, toll-free numbers free
TOLL_FREE_PREFIXES = ("1800", "1888", "1877", "1866", "1855", "1844", "1833")
RATES = {"1": ("0.02", "60/60"), "44": ("0.05", "60/60"), "420": ("0.07", "60/60"),
         **{prefix: ("0", "1/1") for prefix in TOLL_FREE_PREFIXES}}

# the seeds' pass-through IVR ("Roaming PIN")
ROAMING_PIN = {"authorize_paid_calls": True, "auth_code_as_account_id": True,
               "use_associated_number": True, "min_auth_code_length": 4,
               "max_auth_code_length": 4, "max_login_attempts": 3}

_blocks = itertools.count(1)


def next_associated_number() -> str:
    """A fresh associated number: unique within this test process (and so its stacks)."""
    block = next(_blocks)
    if block > 9999:
        raise RuntimeError("tests.tenants: out of associated numbers in this process")
    return f"1997{block:04d}"


def _import(tg, tag: str, document: dict) -> None:
    """Provision `document` (demo/smart-calls.yaml's format) with `tollgate import`."""
    path = Path(tg.dir) / f"tenant-{tag}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    tg.cli("import", str(path))


def _tariff(name: str, rates: dict[str, tuple[str, str]]) -> dict:
    return {"name": name, "currency": "USD",
            "rates": [{"prefix": prefix, "price": price, "interval": interval}
                      for prefix, (price, interval) in rates.items()]}


def _product(name: str, tariff: str) -> dict:
    return {"name": name, "currency": "USD", "rating": [{"access_code": "", "tariff": tariff}]}


# --- the seeds' office: everyone calls via the pass-through IVR, paid calls need a PIN ---

@dataclass(frozen=True)
class Person:
    """One employee's account: a SIP login, a PIN alias, what the account may owe."""
    name: str
    id: str                  # the account ID (SIP user)
    password: str            # its SIP password
    pin: str                 # "" when the account has no <associated number>#<PIN> alias
    associated_number: str
    credit_limit: str

    @property
    def auth_id(self) -> str:
        """The alias the IVR builds from the PIN: <associated number>#<PIN>."""
        return f"{self.associated_number}#{self.pin}"


@dataclass(frozen=True)
class Office:
    """A customer set up as the seeds' "Smart Calls": people by first name (office.rachel)."""
    customer: str
    product: str
    app: str
    associated_number: str
    people: dict[str, Person] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Person:
        people = self.__dict__.get("people", {})
        if name in people:
            return people[name]
        raise AttributeError(name)


def office(tg, *names: str, style: str = CLOUD_PBX, pins: dict[str, str] | None = None,
           credit_limits: dict[str, str] | None = None,
           rates: dict[str, tuple[str, str]] | None = None,
           associated_number: str = "") -> Office:
    """A fresh customer like the seeds' Smart Calls: accounts for `names` (default Rachel,
    Mark and Jake), each calling via its own "Roaming PIN" IVR, each with the alias
    <associated number>#<PIN> (the seeds' PINs unless `pins` says otherwise), each a credit
    account owing up to 50.00 unless `credit_limits` says otherwise.

    rates: prefix -> (price per minute, "first/next" interval) over the demo tariff's
    (North America 0.02/min per started minute, toll-free and own numbers free).
    associated_number: share another office's (another customer using the same number).
    """
    names = names or SEEDS_PEOPLE
    pins = {**PINS, **(pins or {})}
    limits = credit_limits or {}
    tag = uuid.uuid4().hex[:8]
    assoc = associated_number or next_associated_number()
    suffixes = SUFFIXES[style]
    centrex = " Centrex" if style == IP_CENTREX else ""
    made = Office(customer=f"Smart Calls{centrex} {tag}", product=f"Office{centrex} {tag}",
                  app=f"Roaming PIN {tag}", associated_number=assoc)
    for n, name in enumerate(names):
        suffix = suffixes.get(name) or f"{100 + n:04d}"
        made.people[name] = Person(name=name, id=assoc + suffix, password=f"{name}-{suffix}",
                                   pin=pins.get(name, ""), associated_number=assoc,
                                   credit_limit=limits.get(name, "50.00"))
    accounts = []
    for person in made.people.values():
        account = {"id": person.id, "customer": made.customer, "product": made.product,
                   "password": person.password, "associated_number": assoc,
                   "ivr_app": made.app, "billing_model": "credit",
                   "credit_limit": person.credit_limit}
        if person.pin:
            account["aliases"] = [{"id": person.auth_id, "allow_auth": False}]
        accounts.append(account)
    _import(tg, tag, {
        "customers": [{"name": made.customer, "currency": "USD", "credit_limit": "100.00",
                       "language": "en"}],
        # as in the demo tariff, the customer's own numbers are free
        "tariffs": [_tariff(made.product, {**RATES, assoc: ("0", "1/1"), **(rates or {})})],
        "products": [_product(made.product, made.product)],
        "apps": [{"name": made.app, "type": "pass_through", "settings": dict(ROAMING_PIN)}],
        "accounts": accounts,
    })
    return made


# --- smaller tenants of the fault and security matrix ----------------------------------

@dataclass(frozen=True)
class Tenant:
    customer: str
    account: str      # the account ID (SIP user)
    password: str     # its SIP password


def straight_out(tg, balance: str = "10.00", price: str = "0.60", interval: str = "1/1",
                 prefix: str = "1", client: dict | None = None,
                 aliases: tuple[str, ...] = (), account_fields: dict | None = None) -> Tenant:
    """A debit account that calls paid numbers under `prefix` straight out to the gateway
    (no IVR), at `price` per minute billed in `interval` seconds. client: the customer's
    virtual PBX fields (max_calls, ip_filter, authorized_sources, outgoing_ddi ...)."""
    tag = uuid.uuid4().hex[:8]
    tenant = Tenant(customer=f"Test {tag}", account=next_associated_number() + "0001",
                    password=f"pw-{tag}")
    _import(tg, tag, {
        "customers": [{"name": tenant.customer, "currency": "USD", "credit_limit": "",
                       "language": "en", **(client or {})}],
        "tariffs": [_tariff(f"Tariff {tag}", {prefix: (price, interval), "1800": ("0", "1/1")})],
        "products": [_product(f"Product {tag}", f"Tariff {tag}")],
        "accounts": [{"id": tenant.account, "customer": tenant.customer,
                      "product": f"Product {tag}", "password": tenant.password,
                      "billing_model": "debit", "balance": balance,
                      "aliases": [{"id": a, "allow_auth": False} for a in aliases],
                      **(account_fields or {})}],
    })
    return tenant


@dataclass(frozen=True)
class PbxClient:
    """A virtual PBX client with its own SIP domain: extension -> (account ID, password)."""
    customer: str
    domain: str
    extensions: dict[str, tuple[str, str]]


def pbx_client(tg, extensions: tuple[str, ...] = ("101", "102"),
               corporation: str = "") -> PbxClient:
    """A client in a SIP domain of its own whose accounts log in by extension (aliases
    <extension>@<domain> that may authenticate), calling out straight to the gateway."""
    tag = uuid.uuid4().hex[:8]
    domain = f"pbx-{tag}.example"
    base = next_associated_number()
    numbers = {ext: (f"{base}{i:04d}", f"pw-{tag}-{ext}") for i, ext in enumerate(extensions)}
    client = PbxClient(customer=f"Test {tag}", domain=domain, extensions=numbers)
    _import(tg, tag, {
        "customers": [{"name": client.customer, "currency": "USD", "credit_limit": "",
                       "sip_domain": domain, "corporation": corporation or ""}],
        "tariffs": [_tariff(f"Tariff {tag}", {"1": ("0.60", "1/1")})],
        "products": [_product(f"Product {tag}", f"Tariff {tag}")],
        "accounts": [{"id": account, "customer": client.customer, "product": f"Product {tag}",
                      "password": password, "billing_model": "debit", "balance": "10.00",
                      "aliases": [{"id": f"{ext}@{domain}", "allow_auth": True}]}
                     for ext, (account, password) in numbers.items()],
    })
    return client


@dataclass(frozen=True)
class IvrTenant:
    customer: str
    caller: str           # calls paid numbers through the pass-through IVR
    password: str
    payer: str            # pays when the caller keys in `pin`
    pin: str
    associated_number: str


def via_ivr(tg, payer_balance: str = "10.00", price: str = "0.02",
            interval: str = "60/60", client: dict | None = None) -> IvrTenant:
    """The seeds' personalized calling for one test: a caller whose paid calls go through
    a pass-through IVR, and a debit payer reached by the auth ID <associated number>#<PIN>.
    client: the customer's virtual PBX fields."""
    tag = uuid.uuid4().hex[:8]
    assoc = next_associated_number()
    tenant = IvrTenant(customer=f"Test {tag}", caller=assoc + "0001", password=f"pw-{tag}",
                       payer=assoc + "0002", pin=str(1000 + uuid.uuid4().int % 9000),
                       associated_number=assoc)
    account = {"customer": tenant.customer, "product": f"Product {tag}",
               "associated_number": assoc, "billing_model": "debit"}
    _import(tg, tag, {
        "customers": [{"name": tenant.customer, "currency": "USD", "credit_limit": "",
                       "language": "en", **(client or {})}],
        "tariffs": [_tariff(f"Tariff {tag}", {"1": (price, interval), "1800": ("0", "1/1")})],
        "products": [_product(f"Product {tag}", f"Tariff {tag}")],
        "apps": [{"name": f"PIN {tag}", "type": "pass_through", "settings": dict(ROAMING_PIN)}],
        "accounts": [
            {"id": tenant.caller, **account, "password": tenant.password,
             "ivr_app": f"PIN {tag}", "balance": "0"},
            {"id": tenant.payer, **account, "password": f"payer-{tag}",
             "balance": payer_balance,
             "aliases": [{"id": f"{assoc}#{tenant.pin}", "allow_auth": False}]},
        ],
    })
    return tenant


# --- prepaid calling cards (voice-application-settings.txt, first section) -------------

@dataclass(frozen=True)
class CardTenant:
    customer: str
    app: str
    access_number: str     # dialed to reach the prepaid card application
    card: str              # the card number (an 11-digit account ID: the seed's card length)
    phone: str             # an office phone of the same operator (dials the access number)
    password: str          # its SIP password
    ani_alias: str         # the card's ANI alias ("" when none was asked for)


def new_voucher(tg, amount: str) -> str:
    """One voucher of a batch of its own, generated and exported as an operator does."""
    made = json.loads(tg.cli("--json", "voucher", "generate", "--count", "1", "--amount",
                             amount, "--currency", "USD").stdout)
    exported = tg.cli("voucher", "export", str(made["batch"])).stdout
    return next(csv.DictReader(io.StringIO(exported)))["voucher"]


def prepaid_card(tg, settings: dict | None = None, balance: str = "5.00",
                 rates: dict[str, dict[str, tuple[str, str]]] | None = None,
                 ani_alias: str = "", service_password: str = "",
                 card_fields: dict | None = None, app_type: str = "prepaid") -> CardTenant:
    """A prepaid card service of its own: an access number reaching a prepaid application
    with `settings` over the seed's defaults, and a debit card holding `balance`.

    rates: access code -> {prefix: (price per minute, "first/next")}; the default rates
    plain calls to 1... at 0.60/min per second. ani_alias: an alias of the card that
    authenticates its ANI (e.g. ani44212345678).
    """
    tag = uuid.uuid4().hex[:8]
    assoc = next_associated_number()
    made = CardTenant(customer=f"Cards {tag}", app=f"Card {tag}", access_number=assoc + "000",
                      card=assoc + "555", phone=assoc + "0001", password=f"pw-{tag}",
                      ani_alias=ani_alias)
    # an access code may name the access number: "LEG_A.{access}"
    by_code = {code.format(access=made.access_number): table
               for code, table in (rates or {"": {"1": ("0.60", "1/1")}}).items()}
    tariffs = [_tariff(f"Cards {tag} {code or 'plain'}", table)
               for code, table in by_code.items()]
    product = {"name": f"Cards {tag}", "currency": "USD",
               "rating": [{"access_code": code, "tariff": f"Cards {tag} {code or 'plain'}"}
                          for code in by_code]}
    card = {"id": made.card, "customer": made.customer, "product": f"Cards {tag}",
            "billing_model": "debit", "balance": balance, **(card_fields or {})}
    if service_password:
        card["service_password"] = service_password
    if ani_alias:
        card["aliases"] = [{"id": ani_alias, "allow_auth": False}]
    _import(tg, tag, {
        "customers": [{"name": made.customer, "currency": "USD", "credit_limit": "",
                       "language": "en"}],
        "tariffs": tariffs,
        "products": [product],
        "apps": [{"name": made.app, "type": app_type, "settings": dict(settings or {}),
                  "access_numbers": [made.access_number]}],
        "accounts": [card, {"id": made.phone, "customer": made.customer,
                            "product": f"Cards {tag}", "password": made.password,
                            "billing_model": "debit", "balance": "0"}],
    })
    return made
