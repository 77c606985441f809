"""The tollgate CLI against real PostgreSQL and Redis: writes, refusals, import, resync."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import msgpack
import psycopg
import pytest
import redis

from provisioning.migrate import migrate
from tests.cli import Tollgate
from tests.servers import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "demo" / "smart-calls.yaml"
TABLES = ("customers", "accounts", "aliases", "ids", "products", "tariffs", "rates",
          "rating_entries", "voice_applications", "access_numbers", "balance_operations",
          "rating_profiles")


@pytest.fixture
def tg(pg_dsn, redis_server, redis_client, capsys):
    migrate(pg_dsn)
    return Tollgate(pg_dsn, redis_server.url(), capsys)


@pytest.fixture
def demo(tg):
    assert tg("import", str(DEMO)) == 0, tg.err
    return tg


def record(client: redis.Redis, key: str):
    data = client.get(key)
    assert data is not None, f"{key} missing"
    return msgpack.unpackb(data, raw=False)


def snapshot(dsn: str, client: redis.Redis) -> tuple[dict, dict]:
    """Row counts of every provisioning table and every Redis key with its value."""
    with psycopg.connect(dsn) as conn:
        counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
    values = {}
    for key in client.keys("*"):
        kind = client.type(key)
        values[key] = client.hgetall(key) if kind == b"hash" else client.get(key)
    return counts, values


# --- import of the demo tenant: exact records per docs/DATA.md ----------------------------

def test_demo_import_writes_the_exact_records(demo, redis_client):
    r = redis_client
    assert record(r, "tg:customer:1") == {
        "id": 1, "name": "Smart Calls, Ltd.", "currency": "USD", "timezone": "America/Vancouver",
        "language": "en", "credit_limit": "100.00000", "blocked": False, "max_calls": 0,
        "max_daily_usage": None, "daily_usage_email": None, "ip_filter": False,
        "authorized_sources": [], "allowed_countries": [], "outgoing_ddi": None,
        "media_relay_set": None, "voice_notifications": False, "recording": False,
        "features": ["billing", "voice_notifications", "recording"],
        "billing_method": "postpaid", "sip_domain": None, "corporation": None,
        "distribute_method": "hash", "application_server": None,
        "on_demand_recording": "disabled", "recording_service_code": "*1",
        "allow_recording_removal": False,
        "rating_profiles": []}
    assert record(r, "tg:account:17785551209") == {
        "id": "17785551209", "customer_id": 1, "product_id": 1, "password": "rachel-1209",
        "service_password": "", "associated_number": "1778555", "ivr_app_id": 1,
        "language": None, "blocked": False, "billing_model": "credit", "credit_limit": "50.00000",
        "answering_mode": "ring", "follow_me": [], "follow_me_order": "sequential",
        "expires": None, "first_use": None, "outgoing_ddi": None,
        "voicemail_pin_required": False}
    assert record(r, "tg:alias:1778555#4545") == {
        "id": "1778555#4545", "account_id": "17785551209", "allow_auth": False}
    assert record(r, "tg:alias:1778555#8989")["account_id"] == "17785551210"
    assert record(r, "tg:alias:1206555#4545")["account_id"] == "12065557777"
    assert record(r, "tg:alias:1206555#8989")["account_id"] == "12065558888"
    assert record(r, "tg:product:1") == {
        "id": 1, "name": "Smart Calls Office", "currency": "USD",
        "rating": [{"access_code": "", "tariff_id": 1}], "rounding_amount": "0.01000"}
    assert record(r, "tg:tariff:2") == {"id": 2, "name": "Smart Calls Centrex", "currency": "USD"}
    rates = {k.decode(): msgpack.unpackb(v, raw=False) for k, v in r.hgetall("tg:rates:1").items()}
    assert rates["1"] == {"prefix": "1", "price_first": "0.02000", "price_next": "0.02000",
                          "interval_first": 60, "interval_next": 60, "connect_fee": "0.00000",
                          "free_seconds": 0, "forbidden": False}
    assert {p for p, rate in rates.items() if rate["price_first"] == "0.00000"} == {
        "1800", "1888", "1877", "1866", "1855", "1844", "1833", "1778555"}
    assert b"1206555" in r.hgetall("tg:rates:2") and b"1778555" not in r.hgetall("tg:rates:2")
    app = record(r, "tg:app:1")
    assert (app["name"], app["type"], app["access_numbers"]) == ("Roaming PIN", "pass_through", [])
    settings = app["settings"]
    assert settings["authorize_paid_calls"] and settings["auth_code_as_account_id"]
    assert settings["use_associated_number"]
    assert (settings["min_auth_code_length"], settings["max_auth_code_length"]) == (4, 4)
    assert (settings["lockout_failures"], settings["lockout_seconds"]) == (5, 300)
    assert settings["default_prompt_timeout"] == 3 and settings["max_login_attempts"] == 3
    assert r.get("tg:bal:account:17785551209") == b"0.00000"
    assert r.get("tg:bal:customer:2") == b"0.00000"
    john = record(r, "tg:account:42027777100")  # John's 2nd number: his mobile follows it
    assert (john["answering_mode"], john["follow_me"]) == (
        "forward_then_voicemail", ["42073723123/20"])
    assert record(r, "tg:alias:42073723123@pstn") == {
        "id": "42073723123@pstn", "account_id": "42027777100", "allow_auth": False}
    assert int(r.get("tg:gen")) >= 1


def test_importing_twice_changes_nothing(demo, redis_client, pg_dsn):
    before = snapshot(pg_dsn, redis_client)
    assert demo("import", str(DEMO)) == 0, demo.err
    counts, values = snapshot(pg_dsn, redis_client)
    values.pop(b"tg:gen")
    before[1].pop(b"tg:gen")
    assert (counts, values) == before


# --- refusals: one line, exit 2, nothing written ---------------------------------------

REFUSALS = [
    (["alias", "create", "1778555#4545", "--account", "17785551210"],
     "alias 1778555#4545 already exists"),
    (["alias", "create", "17785551210", "--account", "17785551209"],
     "already exists as an account"),
    (["account", "create", "1778555#8989", "--customer", "Smart Calls, Ltd.",
      "--product", "Smart Calls Office"], "account ID"),
    (["account", "create", "17785551210", "--customer", "Smart Calls, Ltd.",
      "--product", "Smart Calls Office"], "account 17785551210 already exists"),
    (["alias", "create", "1778555#7777", "--account", "19995550000"],
     "unknown account 19995550000"),
    (["alias", "create", "1778556#7777", "--account", "17785551209"],
     "differs from the account's associated number"),
    (["alias", "create", "1778555#77", "--account", "17785551209"], "PIN 77 has 2 digits"),
    (["alias", "create", "1778555#777777", "--account", "17785551209"], "PIN 777777 has 6 digits"),
    (["alias", "create", "1778555#12a4", "--account", "17785551209"],
     "'#' must be followed by digits"),
    (["alias", "create", "bad id", "--account", "17785551209"], "character ' ' is not allowed"),
    (["account", "create", "x" * 65, "--customer", "Smart Calls, Ltd.",
      "--product", "Smart Calls Office"], "longer than 64"),
    (["account", "create", "17785551299", "--customer", "Nobody",
      "--product", "Smart Calls Office"], "unknown customer 'Nobody'"),
    (["account", "create", "17785551299", "--customer", "Smart Calls, Ltd.",
      "--product", "Nothing"], "unknown product 'Nothing'"),
    (["account", "create", "17785551299", "--customer", "Smart Calls, Ltd.",
      "--product", "Smart Calls Office", "--ivr-app", "No App"],
     "unknown voice application 'No App'"),
    (["account", "update", "17785551209", "--associated-number", "1778999"],
     "differs from the account's"),
    (["rate", "create", "Smart Calls Office", "49", "--price", "-0.01"],
     "price '-0.01' is negative"),
    (["rate", "create", "Smart Calls Office", "49", "--price", "0.01", "--interval=-60/60"],
     "first interval -60 must be at least 1"),
    (["rate", "create", "Smart Calls Office", "49", "--price", "0.01", "--interval", "60/0"],
     "next interval 0 must be at least 1"),
    (["rate", "create", "Smart Calls Office", "49", "--price", "0.01", "--free-seconds", "-1"],
     "free seconds -1 must be at least 0"),
    (["rate", "create", "No Tariff", "49", "--price", "0.01"], "unknown tariff 'No Tariff'"),
    (["rate", "create", "Smart Calls Office", "4x", "--price", "0.01"], "prefix '4x'"),
    (["product", "create", "P2", "--currency", "USD", "--rating", "IN=Missing"],
     "unknown tariff 'Missing'"),
    (["app", "create", "Cards", "--type", "prepaid", "--set", "ani_translation_rule=s/^0(/ani44/"],
     "translation rule"),
    (["app", "create", "Cards", "--type", "prepaid", "--set", "pin_translation_rule=^0/ani44"],
     "translation rule"),
    (["app", "create", "Cards", "--type", "prepaid", "--set", "no_such_option=1"],
     "has no setting 'no_such_option'"),
    (["app", "create", "Cards", "--type", "prepaid", "--set", "max_login_attempts=three"],
     "not a whole number"),
    (["app", "update", "Roaming PIN", "--set", "min_auth_code_length=5",
      "--set", "max_auth_code_length=6"], "PIN 4545 has 4 digits"),
    (["app", "update", "Roaming PIN", "--set", "min_auth_code_length=6"],
     "greater than max_auth_code_length"),
    (["customer", "create", "Acme", "--currency", "US"], "currency 'US'"),
    (["customer", "delete", "Smart Calls, Ltd."], "still has accounts"),
    (["tariff", "delete", "Smart Calls Office"], "used by product 'Smart Calls Office'"),
    (["balance", "adjust", "17785551209", "ten"], "not a decimal amount"),
    (["account", "frobnicate"], "invalid choice"),
]


@pytest.mark.parametrize("argv,problem", REFUSALS, ids=[" ".join(a)[:60] for a, _ in REFUSALS])
def test_bad_input_is_refused_with_one_line_and_nothing_written(demo, redis_client, pg_dsn, argv,
                                                                  problem):
    before = snapshot(pg_dsn, redis_client)
    assert demo(*argv) == 2
    lines = demo.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("tollgate: "), demo.err
    assert problem in lines[0]
    assert snapshot(pg_dsn, redis_client) == before


def test_a_bad_tenant_file_is_refused_whole(tg, redis_client, pg_dsn, tmp_path):
    broken = DEMO.read_text().replace('"1206555#8989"', '"1206555#89"')
    path = tmp_path / "broken.yaml"
    path.write_text(broken)
    before = snapshot(pg_dsn, redis_client)
    assert tg("import", str(path)) == 2
    assert "accounts 12065558888: alias 1206555#89: PIN 89 has 2 digits" in tg.err
    assert len(tg.err.splitlines()) == 1
    assert snapshot(pg_dsn, redis_client) == before


# --- round trips per entity --------------------------------------------------------------

def test_customer_round_trip(tg, redis_client):
    assert tg("customer", "create", "Acme", "--currency", "eur", "--credit-limit", "10",
              "--authorized-sources", "10.0.0.1,192.168.0.0/24", "--ip-filter", "true") == 0
    rec = record(redis_client, "tg:customer:1")
    assert (rec["currency"], rec["credit_limit"], rec["ip_filter"]) == ("EUR", "10.00000", True)
    assert rec["authorized_sources"] == ["10.0.0.1/32", "192.168.0.0/24"]
    assert tg("customer", "update", "Acme", "--max-calls", "4", "--credit-limit", "") == 0
    rec = record(redis_client, "tg:customer:1")
    assert (rec["max_calls"], rec["credit_limit"]) == (4, None)
    assert tg("--json", "customer", "show", "Acme") == 0 and '"max_calls": 4' in tg.out
    assert tg("customer", "list") == 0 and "Acme" in tg.out and "CURRENCY" in tg.out
    assert tg("customer", "delete", "Acme") == 0
    assert redis_client.exists("tg:customer:1", "tg:bal:customer:1") == 0
    assert tg("customer", "show", "Acme") == 2


def test_an_outgoing_ddi_must_be_a_number_of_the_customer(tg, redis_client):
    assert tg("customer", "create", "Acme", "--currency", "USD", "--outgoing-ddi",
              "34911000111") == 2
    assert "outgoing DDI 34911000111 is not one of its numbers" in tg.err
    assert len(tg.err.splitlines()) == 1 and redis_client.exists("tg:customer:1") == 0
    assert tg("customer", "create", "Acme", "--currency", "USD") == 0
    assert tg("customer", "create", "Other", "--currency", "USD") == 0
    assert tg("tariff", "create", "T", "--currency", "USD") == 0
    assert tg("product", "create", "P", "--currency", "USD", "--rating", "T") == 0
    for who, number in (("Acme", "34911000111"), ("Other", "34911000222")):
        assert tg("account", "create", number, "--customer", who, "--product", "P") == 0
    assert tg("customer", "update", "Acme", "--outgoing-ddi", "34911000222") == 2  # Other's
    assert tg("alias", "create", "34911000999", "--account", "34911000111") == 0
    assert tg("customer", "update", "Acme", "--outgoing-ddi", "34911000999") == 0
    assert tg("--json", "customer", "show", "Acme") == 0
    assert '"outgoing_ddi": "34911000999"' in tg.out
    # an account's own DDI, over its customer's: also one of that customer's numbers
    assert tg("account", "update", "34911000111", "--outgoing-ddi", "34911000222") == 2
    assert "outgoing DDI 34911000222 is not one of its customer's numbers" in tg.err
    assert tg("account", "update", "34911000111", "--outgoing-ddi", "34911000999") == 0
    assert tg("--json", "account", "show", "34911000111") == 0
    assert '"outgoing_ddi": "34911000999"' in tg.out


def test_rating_profiles_bill_a_client_from_their_activation(tg, redis_client):
    assert tg("customer", "create", "Acme", "--currency", "USD",
              "--timezone", "Europe/Madrid") == 0
    assert tg("tariff", "create", "T", "--currency", "USD") == 0
    for name in ("Old", "New"):
        assert tg("product", "create", name, "--currency", "USD", "--rating", "T") == 0
    assert tg("product", "create", "Euro", "--currency", "EUR") == 0
    assert tg("rating-profile", "add", "Acme", "Old", "--activation", "2026-01-01") == 0
    assert tg("rating-profile", "add", "Acme", "New", "--activation",
              "2026-06-01T00:00:00+00:00", "--expiry", "2030-01-01") == 0
    profiles = record(redis_client, "tg:customer:1")["rating_profiles"]
    # newest first; a time without an offset is the client's (Madrid: UTC+1 in January)
    assert [(p["product_id"], p["activation"], p["expiry"]) for p in profiles] == [
        (2, "2026-06-01T00:00:00+00:00", "2029-12-31T23:00:00+00:00"),
        (1, "2025-12-31T23:00:00+00:00", None)]
    assert tg("--json", "rating-profile", "list", "Acme") == 0
    assert '"product": "New"' in tg.out and '"active": true' in tg.out
    # refusals: one line each, nothing written
    before = snapshot(tg.dsn, redis_client)
    for argv, problem in (
            (("Acme", "Euro"), "product Euro bills in EUR, customer Acme pays in USD"),
            (("Acme", "Nope"), "unknown product 'Nope'"),
            (("Nobody", "Old"), "unknown customer 'Nobody'"),
            (("Acme", "Old", "--activation", "yesterday"), "not an ISO 8601 time"),
            (("Acme", "Old", "--activation", "2026-01-01"), "already has product Old"),
            (("Acme", "Old", "--activation", "2027-01-01", "--expiry", "2026-01-01"),
             "is not after activation")):
        assert tg("rating-profile", "add", *argv) == 2, argv
        assert problem in tg.err and len(tg.err.splitlines()) == 1
    assert snapshot(tg.dsn, redis_client) == before
    assert tg("rating-profile", "remove", "Acme", "Old") == 0
    assert [p["product_id"] for p in record(redis_client, "tg:customer:1")["rating_profiles"]] \
        == [2]
    assert tg("rating-profile", "remove", "Acme", "Old") == 2
    assert tg("product", "delete", "New") != 0   # a client's profile still uses it


def test_rating_profiles_in_the_yaml_import(tg, redis_client, tmp_path):
    tenant = tmp_path / "t.yaml"
    tenant.write_text("""
customers:
  - name: Acme
    currency: USD
    rating_profiles:
      - {product: P, activation: "2026-01-01T00:00:00Z"}
tariffs:
  - {name: T, currency: USD, rates: [{prefix: "1", price: "0.02", interval: 60/60}]}
products:
  - {name: P, currency: USD, rating: [{access_code: "", tariff: T}]}
""")
    assert tg("import", str(tenant)) == 0, tg.err
    assert tg("import", str(tenant)) == 0, tg.err   # twice: the same one profile
    assert [p["product_id"] for p in record(redis_client, "tg:customer:1")["rating_profiles"]] \
        == [1]
    tenant.write_text(tenant.read_text().replace("product: P,", "product: Q,"))
    assert tg("import", str(tenant)) == 2
    assert tg.err.strip() == "tollgate: customers Acme: unknown product 'Q'"


def test_features_hide_and_disable_what_is_off(tg, redis_client):
    assert tg("customer", "create", "Acme", "--currency", "USD", "--features",
              "billing,recording", "--billing-method", "none") == 0, tg.err
    rec = record(redis_client, "tg:customer:1")
    assert (rec["features"], rec["billing_method"]) == (["billing", "recording"], "none")
    assert tg("--json", "customer", "show", "Acme") == 0
    assert '"voice_notifications"' not in tg.out and '"recording": false' in tg.out
    before = snapshot(tg.dsn, redis_client)
    for argv, problem in (
            (("--voice-notifications", "true"), "voice_notifications needs the "
                                                "voice_notifications feature"),
            (("--features", "billing,faxes"), "feature 'faxes': each one of billing, "
                                              "voice_notifications, recording"),
            (("--billing-method", "prepaid"), "billing method 'prepaid': one of postpaid, none"),
            (("--allowed-countries", "ES,XX"), "country 'XX' is not an ISO 3166 country code")):
        assert tg("customer", "update", "Acme", *argv) == 2, argv
        assert problem in tg.err and len(tg.err.splitlines()) == 1, tg.err
    assert snapshot(tg.dsn, redis_client) == before
    assert tg("customer", "update", "Acme", "--features", "recording") == 0
    assert tg("tariff", "create", "T", "--currency", "USD") == 0
    assert tg("product", "create", "P", "--currency", "USD", "--rating", "T") == 0
    assert tg("rating-profile", "add", "Acme", "P") == 2
    assert "rating profiles need the billing feature" in tg.err
    assert tg("--json", "customer", "show", "Acme") == 0
    assert '"billing_method"' not in tg.out


def test_client_sip_domains_and_their_extensions(tg, redis_client):
    assert tg("customer", "create", "Acme", "--currency", "USD", "--sip-domain",
              "PBX.Acme.example", "--corporation", "Holding") == 0, tg.err
    assert tg("customer", "create", "Other", "--currency", "USD", "--sip-domain",
              "pbx.other.example") == 0
    assert record(redis_client, "tg:domain:pbx.acme.example") == {"customer_id": 1}
    assert record(redis_client, "tg:customer:1")["corporation"] == "Holding"
    assert tg("tariff", "create", "T", "--currency", "USD") == 0
    assert tg("product", "create", "P", "--currency", "USD", "--rating", "T") == 0
    for who, number in (("Acme", "34911000111"), ("Other", "34911000222")):
        assert tg("account", "create", number, "--customer", who, "--product", "P") == 0
    # the same extension in two domains, each an alias of its own client's account
    assert tg("alias", "create", "101@pbx.acme.example", "--account", "34911000111",
              "--allow-auth", "true") == 0
    assert tg("alias", "create", "101@PBX.OTHER.example", "--account", "34911000222",
              "--allow-auth", "true") == 0
    assert record(redis_client, "tg:alias:101@pbx.other.example")["account_id"] == \
        "34911000222"
    before = snapshot(tg.dsn, redis_client)
    for argv, problem in (
            (("alias", "create", "102@pbx.acme.example", "--account", "34911000222"),
             "pbx.acme.example is the SIP domain of customer Acme, and account 34911000222"),
            (("alias", "update", "101@pbx.acme.example", "--account", "34911000222"),
             "is not one of its accounts"),
            (("customer", "update", "Acme", "--sip-domain", "acme"), "is not a DNS name"),
            (("customer", "create", "Third", "--currency", "USD", "--sip-domain",
              "pbx.acme.example"), "sip_domain pbx.acme.example already exists in customers"),
            (("customer", "update", "Acme", "--sip-domain", "new.acme.example"),
             "extensions of pbx.acme.example remain")):
        assert tg(*argv) == 2, argv
        assert problem in tg.err and len(tg.err.splitlines()) == 1, tg.err
    assert snapshot(tg.dsn, redis_client) == before
    assert tg("alias", "delete", "101@pbx.acme.example") == 0
    assert tg("customer", "update", "Acme", "--sip-domain", "new.acme.example") == 0
    assert redis_client.exists("tg:domain:pbx.acme.example") == 0
    assert record(redis_client, "tg:domain:new.acme.example") == {"customer_id": 1}
    assert tg("customer", "update", "Acme", "--sip-domain", "") == 0
    assert redis_client.exists("tg:domain:new.acme.example") == 0


def test_a_media_relay_set_must_be_one_of_the_settings(tg, redis_client, monkeypatch):
    assert tg("customer", "create", "Acme", "--currency", "USD",
              "--media-relay-set", "eu") == 2
    assert "media relay set 'eu' is not in the settings' media_relay_sets (sets: none)" \
        in tg.err
    monkeypatch.setenv("TOLLGATE_MEDIA_RELAY_SETS", "eu=127.0.0.1:2224")
    assert tg("customer", "create", "Acme", "--currency", "USD",
              "--media-relay-set", "eu") == 0, tg.err
    assert record(redis_client, "tg:customer:1")["media_relay_set"] == "eu"


def test_tariff_and_rate_round_trip(tg, redis_client):
    assert tg("tariff", "create", "Intl", "--currency", "USD") == 0
    assert tg("rate", "create", "Intl", "44", "--price", "0.05", "--interval", "1/1",
              "--connect-fee", "0.1") == 0
    rate = msgpack.unpackb(redis_client.hget("tg:rates:1", "44"), raw=False)
    assert ((rate["price_first"], rate["interval_first"], rate["connect_fee"])
            == ("0.05000", 1, "0.10000"))
    assert tg("rate", "update", "Intl", "44", "--price-next", "0.04", "--forbidden", "yes") == 0
    rate = msgpack.unpackb(redis_client.hget("tg:rates:1", "44"), raw=False)
    assert ((rate["price_first"], rate["price_next"], rate["forbidden"])
            == ("0.05000", "0.04000", True))
    assert tg("rate", "show", "Intl", "44") == 0 and "0.04000" in tg.out
    assert tg("rate", "list", "Intl") == 0 and "44" in tg.out
    assert tg("tariff", "update", "Intl", "--rename", "International") == 0
    assert record(redis_client, "tg:tariff:1")["name"] == "International"
    assert tg("tariff", "list") == 0 and "International" in tg.out
    assert tg("rate", "delete", "International", "44") == 0
    assert redis_client.hget("tg:rates:1", "44") is None
    assert tg("rate", "create", "International", "420", "--price", "0.07") == 0
    assert tg("tariff", "delete", "International") == 0
    assert redis_client.exists("tg:tariff:1", "tg:rates:1") == 0


def test_product_round_trip(tg, redis_client):
    for name in ("Plain", "Incoming"):
        assert tg("tariff", "create", name, "--currency", "USD") == 0
    assert tg("product", "create", "Office", "--currency", "USD", "--rating", "Plain",
              "--rating", "IN=Incoming") == 0
    assert record(redis_client, "tg:product:1")["rating"] == [
        {"access_code": "", "tariff_id": 1}, {"access_code": "IN", "tariff_id": 2}]
    assert tg("product", "update", "Office", "--rating", "FIRSTCALL=Incoming") == 0
    assert (record(redis_client, "tg:product:1")["rating"]
            == [{"access_code": "FIRSTCALL", "tariff_id": 2}])
    assert tg("product", "show", "Office") == 0 and "FIRSTCALL=Incoming" in tg.out
    assert record(redis_client, "tg:product:1")["rounding_amount"] == "0.01000"
    assert tg("product", "update", "Office", "--rounding-amount", "0.5") == 0
    assert record(redis_client, "tg:product:1")["rounding_amount"] == "0.50000"
    assert tg("product", "update", "Office", "--rounding-amount", "-1") == 2
    assert "rounding amount" in tg.err
    assert tg("product", "list") == 0 and "Office" in tg.out
    assert tg("product", "delete", "Office") == 0
    assert redis_client.exists("tg:product:1") == 0


def test_app_round_trip(tg, redis_client):
    assert tg("app", "create", "Cards", "--type", "prepaid",
              "--set", "ani_translation_rule=s/^0/ani44/", "--access-number", "16045550100") == 0
    app = record(redis_client, "tg:app:1")
    assert app["settings"]["ani_translation_rule"] == "s/^0/ani44/"
    assert app["settings"]["min_card_length"] == 11 and app["access_numbers"] == ["16045550100"]
    assert record(redis_client, "tg:accessnum:16045550100") == {"app_id": 1}
    assert tg("app", "update", "Cards", "--access-number", "16045550199",
              "--set", "max_dial_attempts=5") == 0
    app = record(redis_client, "tg:app:1")
    assert app["settings"]["max_dial_attempts"] == 5
    assert app["settings"]["ani_translation_rule"] == "s/^0/ani44/"
    assert redis_client.get("tg:accessnum:16045550100") is None
    assert record(redis_client, "tg:accessnum:16045550199") == {"app_id": 1}
    assert tg("app", "show", "Cards") == 0 and "16045550199" in tg.out
    assert tg("app", "list") == 0 and "prepaid" in tg.out
    assert tg("app", "options", "pass_through") == 0 and "lockout_seconds" in tg.out
    assert tg("app", "delete", "Cards") == 0
    assert redis_client.exists("tg:app:1", "tg:accessnum:16045550199") == 0


def test_an_access_number_brands_its_callers_prompts(tg, redis_client):
    """Brand prompts per access number: NUMBER:BRAND on the CLI (a map in YAML), the
    number's brand before the app's, and a folder name never a path."""
    from tollgate.directory import Directory
    assert tg("app", "create", "Cards", "--type", "prepaid", "--set", "brand_prompts=house",
              "--access-number", "16045550100:acme", "--access-number", "16045550101") == 0
    assert record(redis_client, "tg:accessnum:16045550100") == {
        "app_id": 1, "brand_prompts": "acme"}
    assert record(redis_client, "tg:accessnum:16045550101") == {"app_id": 1}
    directory, app = Directory(redis_client), record(redis_client, "tg:app:1")
    assert directory.brand_prompts("16045550100", app) == "acme"
    assert directory.brand_prompts("16045550101", app) == "house"
    assert directory.brand_prompts("16045550199", app) == "house"  # not one of its numbers
    assert tg("app", "show", "Cards") == 0 and "16045550100:acme" in tg.out
    for bad in ("16045550102:../etc", "16045550102:a/b", "16045550102:.hidden"):
        assert tg("app", "update", "Cards", "--access-number", bad) == 2
        assert "brand prompts" in tg.err and len(tg.err.strip().splitlines()) == 1
    assert record(redis_client, "tg:accessnum:16045550100")["brand_prompts"] == "acme"
    assert tg("app", "update", "Cards", "--access-number", "16045550100") == 0
    assert record(redis_client, "tg:accessnum:16045550100") == {"app_id": 1}


def test_account_alias_and_balance_round_trip(demo, redis_client, pg_dsn):
    tg = demo
    assert tg("account", "create", "17785551212", "--customer", "Smart Calls, Ltd.",
              "--product", "Smart Calls Office", "--billing-model", "debit", "--balance", "5",
              "--follow-me", "+14155550100", "--answering-mode", "forward_then_voicemail") == 0
    rec = record(redis_client, "tg:account:17785551212")
    assert (rec["billing_model"], rec["follow_me"], rec["answering_mode"]) == (
        "debit", ["+14155550100/20"], "forward_then_voicemail")
    assert redis_client.get("tg:bal:account:17785551212") == b"5.00000"
    assert tg("account", "update", "17785551212", "--associated-number", "1778555",
              "--ivr-app", "Roaming PIN", "--blocked", "true") == 0
    rec = record(redis_client, "tg:account:17785551212")
    assert (rec["associated_number"], rec["ivr_app_id"], rec["blocked"]) == ("1778555", 1, True)
    assert tg("alias", "create", "1778555#1212", "--account", "17785551212") == 0
    assert tg("alias", "create", "14155550100@pstn", "--account", "17785551212",
              "--allow-auth", "false") == 0
    assert record(redis_client, "tg:alias:14155550100@pstn")["account_id"] == "17785551212"
    assert tg("alias", "update", "14155550100@pstn", "--allow-auth", "true") == 0
    assert record(redis_client, "tg:alias:14155550100@pstn")["allow_auth"] is True
    assert tg("alias", "show", "1778555#1212") == 0 and "17785551212" in tg.out
    assert tg("alias", "list", "--account", "17785551212") == 0 and "@pstn" in tg.out
    assert tg("account", "list", "--customer", "Smart Calls, Ltd.") == 0 and "17785551212" in tg.out
    assert tg("balance", "adjust", "17785551212", "2.5", "--comment", "top-up") == 0
    assert redis_client.get("tg:bal:account:17785551212") == b"7.50000"
    assert tg("--json", "balance", "show", "17785551212") == 0
    assert '"available": "7.50000"' in tg.out
    assert tg("balance", "adjust", "17785551209", "1") == 0  # credit: pays 1.00 of what is owed
    assert redis_client.get("tg:bal:account:17785551209") == b"-1.00000"
    assert redis_client.get("tg:bal:customer:1") == b"-1.00000"
    with psycopg.connect(pg_dsn) as conn:
        ops = conn.execute("SELECT account_id, kind, amount, comment FROM balance_operations"
                           " ORDER BY id").fetchall()
    assert [(a, k, str(m), c) for a, k, m, c in ops] == [
        ("17785551212", "adjust", "2.50000", "top-up"), ("17785551209", "adjust", "-1.00000", "")]
    assert tg("alias", "delete", "1778555#1212") == 0
    assert redis_client.exists("tg:alias:1778555#1212") == 0
    assert tg("account", "delete", "17785551212") == 0
    assert redis_client.exists("tg:account:17785551212", "tg:bal:account:17785551212",
                               "tg:alias:14155550100@pstn") == 0
    # a freed ID can be used again, as either kind
    assert tg("alias", "create", "17785551212", "--account", "17785551209") == 0


# --- invalidation, resync, Redis down ------------------------------------------------------

def _subscribe(client: redis.Redis):
    pubsub = client.pubsub()
    pubsub.subscribe("tg:invalidate")
    assert pubsub.get_message(timeout=5)["type"] == "subscribe"
    return pubsub


def _messages(pubsub, count: int) -> list[bytes]:
    got = []
    while len(got) < count:
        msg = pubsub.get_message(timeout=5)
        assert msg is not None, f"only {got} published"
        if msg["type"] == "message":
            got.append(msg["data"])
    return got


def test_an_update_publishes_the_changed_key_and_bumps_gen(demo, redis_client):
    pubsub = _subscribe(redis_client)
    gen = int(redis_client.get("tg:gen"))
    assert demo("account", "update", "17785551210", "--password", "new-secret") == 0
    assert set(_messages(pubsub, 2)) == {b"tg:account:17785551210", b"tg:bal:account:17785551210"}
    assert int(redis_client.get("tg:gen")) == gen + 1
    assert record(redis_client, "tg:account:17785551210")["password"] == "new-secret"
    pubsub.close()


def test_resync_rebuilds_redis_after_flushall(demo, redis_client, pg_dsn):
    expected = snapshot(pg_dsn, redis_client)[1]
    redis_client.set("tg:alias:stale", b"x")
    redis_client.flushall()
    redis_client.set("tg:gen", 41)
    redis_client.set("tg:account:gone", b"x")  # nothing in PostgreSQL: resync drops it
    pubsub = _subscribe(redis_client)
    assert demo("resync") == 0
    assert "100%" in demo.err
    assert _messages(pubsub, 1) == [b"*"]
    after = snapshot(pg_dsn, redis_client)[1]
    assert after.pop(b"tg:gen") == b"42"
    expected.pop(b"tg:gen")
    assert after == expected
    pubsub.close()


def test_redis_down_after_commit_exits_3_and_keeps_the_write(pg_dsn, capsys):
    migrate(pg_dsn)
    dead = f"redis://127.0.0.1:{free_port()}/0"
    tg = Tollgate(pg_dsn, dead, capsys)
    assert tg("customer", "create", "Acme", "--currency", "USD") == 3
    assert len(tg.err.splitlines()) == 1 and "tollgate resync" in tg.err
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT name FROM customers").fetchall() == [("Acme",)]


def test_resync_pushes_many_aliases(tg, redis_client, pg_dsn):
    assert tg("customer", "create", "Bulk", "--currency", "USD") == 0
    assert tg("tariff", "create", "T", "--currency", "USD") == 0
    assert tg("product", "create", "P", "--currency", "USD", "--rating", "T") == 0
    assert tg("account", "create", "100", "--customer", "Bulk", "--product", "P") == 0
    count = 30000
    with psycopg.connect(pg_dsn) as conn:
        with conn.cursor().copy("COPY ids (id, kind) FROM STDIN") as copy:
            for n in range(count):
                copy.write_row((f"ani{n}", "alias"))
        with conn.cursor().copy("COPY aliases (id, account_id) FROM STDIN") as copy:
            for n in range(count):
                copy.write_row((f"ani{n}", "100"))
    assert tg("resync") == 0
    assert redis_client.dbsize() >= count
    assert record(redis_client, f"tg:alias:ani{count - 1}")["account_id"] == "100"


# --- the real entry point ------------------------------------------------------------------

def test_console_entry_point_runs_as_a_process(demo, redis_server, pg_dsn):
    base = [sys.executable, "-m", "provisioning.cli", "--dsn", pg_dsn,
            "--redis", redis_server.url()]
    shown = subprocess.run([*base, "--json", "alias", "show", "1778555#4545"], cwd=ROOT,
                           capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert '"account": "17785551209"' in shown.stdout
    refused = subprocess.run([*base, "alias", "create", "1778555#4545", "--account", "17785551210"],
                             cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2
    assert refused.stderr == "tollgate: alias 1778555#4545 already exists\n"
