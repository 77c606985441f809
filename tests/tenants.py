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
