"""Tenants a test makes for itself: unique names, provisioned through the CLI's YAML import
(one transaction, as an operator would), so tests never share accounts or balances."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Tenant:
    customer: str
    account: str      # the account ID (SIP user)
    password: str     # its SIP password


def _number() -> str:
    """A fresh 11-digit account number in a range the demo tenant does not use."""
    return "1999" + str(uuid.uuid4().int % 10**7).zfill(7)


def straight_out(tg, balance: str = "10.00", price: str = "0.60", interval: str = "1/1",
                 prefix: str = "1") -> Tenant:
    """A debit account that calls paid numbers under `prefix` straight out to the gateway
    (no IVR), at `price` per minute billed in `interval` seconds."""
    tag = uuid.uuid4().hex[:8]
    tenant = Tenant(customer=f"Test {tag}", account=_number(), password=f"pw-{tag}")
    yaml = f"""
customers:
  - {{name: "{tenant.customer}", currency: USD, credit_limit: "", language: en}}
tariffs:
  - name: "Tariff {tag}"
    currency: USD
    rates:
      - {{prefix: "{prefix}", price: "{price}", interval: {interval}}}
      - {{prefix: "1800", price: "0", interval: 1/1}}
products:
  - name: "Product {tag}"
    currency: USD
    rating:
      - {{access_code: "", tariff: "Tariff {tag}"}}
accounts:
  - id: "{tenant.account}"
    customer: "{tenant.customer}"
    product: "Product {tag}"
    password: "{tenant.password}"
    billing_model: debit
    balance: "{balance}"
"""
    path = Path(tg.dir) / f"tenant-{tag}.yaml"
    path.write_text(yaml)
    tg.cli("import", str(path))
    return tenant


@dataclass(frozen=True)
class IvrTenant:
    customer: str
    caller: str           # calls paid numbers through the pass-through IVR
    password: str
    payer: str            # pays when the caller keys in `pin`
    pin: str
    associated_number: str


def via_ivr(tg, payer_balance: str = "10.00", price: str = "0.02",
            interval: str = "60/60") -> IvrTenant:
    """The seeds' personalized calling for one test: a caller whose paid calls go through
    a pass-through IVR, and a payer reached by the auth ID <associated number>#<PIN>."""
    tag = uuid.uuid4().hex[:8]
    assoc = "1998" + str(uuid.uuid4().int % 10**4).zfill(4)
    tenant = IvrTenant(customer=f"Test {tag}", caller=_number(), password=f"pw-{tag}",
                       payer=_number(), pin=str(1000 + uuid.uuid4().int % 9000),
                       associated_number=assoc)
    yaml = f"""
customers:
  - {{name: "{tenant.customer}", currency: USD, credit_limit: "", language: en}}
tariffs:
  - name: "Tariff {tag}"
    currency: USD
    rates:
      - {{prefix: "1", price: "{price}", interval: {interval}}}
      - {{prefix: "1800", price: "0", interval: 1/1}}
products:
  - name: "Product {tag}"
    currency: USD
    rating:
      - {{access_code: "", tariff: "Tariff {tag}"}}
apps:
  - name: "PIN {tag}"
    type: pass_through
    settings: {{authorize_paid_calls: true, auth_code_as_account_id: true,
               use_associated_number: true, min_auth_code_length: 4,
               max_auth_code_length: 4, max_login_attempts: 3}}
accounts:
  - id: "{tenant.caller}"
    customer: "{tenant.customer}"
    product: "Product {tag}"
    password: "{tenant.password}"
    associated_number: "{assoc}"
    ivr_app: "PIN {tag}"
    billing_model: debit
    balance: "0"
  - id: "{tenant.payer}"
    customer: "{tenant.customer}"
    product: "Product {tag}"
    password: "payer-{tag}"
    associated_number: "{assoc}"
    billing_model: debit
    balance: "{payer_balance}"
    aliases:
      - {{id: "{assoc}#{tenant.pin}", allow_auth: false}}
"""
    path = Path(tg.dir) / f"tenant-{tag}.yaml"
    path.write_text(yaml)
    tg.cli("import", str(path))
    return tenant
