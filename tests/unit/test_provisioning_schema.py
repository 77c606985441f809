"""Voice application settings schema, Redis projection records, CLI argument errors."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from provisioning import app_settings, cli, loader
from provisioning.cli.common import table
from provisioning.validate import BadInput

pytestmark = pytest.mark.unit


def test_every_type_has_a_schema_with_the_seed_defaults():
    assert set(app_settings.SCHEMA) == set(app_settings.TYPES)
    pt = app_settings.defaults("pass_through")
    seed = {
        "authorize_paid_calls": False, "auth_code_as_account_id": False,
        "use_associated_number": False, "min_auth_code_length": 4, "max_auth_code_length": 4,
        "max_login_attempts": 3, "confirm_by_pound": False, "default_prompt_timeout": 3,
        "brand_prompts": "", "lockout_failures": 5, "lockout_seconds": 300}
    assert {k: pt[k] for k in seed} == seed
    prepaid = app_settings.defaults("prepaid")
    assert (prepaid["min_card_length"], prepaid["max_card_length"]) == (11, 11)
    assert (prepaid["min_voucher_length"], prepaid["max_language_selection_attempts"]) == (11, 3)
    assert prepaid["max_dial_attempts"] == 3 and prepaid["account_top_up"] is True
    assert prepaid["check_service_password"] == "none"
    assert app_settings.defaults("callback")["expected_connect_time"] == 20
    assert app_settings.defaults("voucher_topup")["max_login_attempts"] == 3
    assert "use_early_media" in app_settings.defaults("balance_info")
    assert app_settings.defaults("balance_transfer")["minimum_sum"] == "0"


def test_every_option_has_help():
    for options in app_settings.SCHEMA.values():
        for opt in options.values():
            assert opt.help and opt.name.islower() and " " not in opt.name


def test_complete_fills_defaults_and_checks_types():
    full = app_settings.complete("pass_through", {"authorize_paid_calls": True})
    assert full == {**app_settings.defaults("pass_through"), "authorize_paid_calls": True}
    merged = app_settings.complete("pass_through", {"max_login_attempts": 5}, base=full)
    assert merged["authorize_paid_calls"] is True and merged["max_login_attempts"] == 5


@pytest.mark.parametrize("kind,given,problem", [
    ("pass_through", {"no_such": 1}, "no setting 'no_such'"),
    ("pass_through", {"authorize_paid_calls": "yes"}, "not a boolean"),
    ("pass_through", {"max_login_attempts": True}, "not a whole number"),
    ("pass_through", {"max_login_attempts": 0}, "less than 1"),
    ("pass_through", {"min_auth_code_length": 6}, "greater than max_auth_code_length"),
    ("prepaid", {"check_service_password": "sometimes"}, "one of none/always"),
    ("prepaid", {"languages": "en"}, "not a list"),
    ("prepaid", {"ani_translation_rule": "s/^0(/ani44/"}, "translation rule"),
    ("callback", {"destination_translation_rule": "nonsense"}, "translation rule"),
    ("balance_transfer", {"minimum_sum": "-1"}, "negative"),
    ("nonsense", {}, "voice application type"),
])
def test_complete_refuses(kind, given, problem):
    with pytest.raises(BadInput, match=problem):
        app_settings.complete(kind, given)


def test_parse_command_line_values():
    assert (app_settings.parse("pass_through", "authorize-paid-calls=on")
            == ("authorize_paid_calls", True))
    assert app_settings.parse("prepaid", "languages=en, es") == ("languages", ["en", "es"])
    assert app_settings.parse("prepaid", "max_dial_attempts=5") == ("max_dial_attempts", 5)
    with pytest.raises(BadInput):
        app_settings.parse("prepaid", "max_dial_attempts")


def test_records_follow_the_data_contract():
    account = loader.account_record({
        "id": "17785551209", "customer_id": 1, "product_id": 2, "password": "p",
        "service_password": "", "associated_number": "1778555", "ivr_app_id": 3,
        "language": None, "blocked": False,
        "billing_model": "credit", "credit_limit": Decimal("50"), "answering_mode": "ring",
        "follow_me": [], "expires": datetime(2030, 1, 1, tzinfo=timezone.utc), "first_use": None,
        "outgoing_ddi": None, "balance": Decimal("1")})
    assert account["credit_limit"] == "50.00000"
    assert account["expires"] == "2030-01-01T00:00:00+00:00"
    assert "balance" not in account  # balances live in tg:bal:* only
    rate = loader.rate_record({"prefix": "1", "price_first": Decimal("0.02"),
                               "price_next": Decimal("0E-5"), "interval_first": 60,
                               "interval_next": 60, "connect_fee": Decimal(0),
                               "free_seconds": 0, "forbidden": False})
    assert ((rate["price_first"], rate["price_next"], rate["connect_fee"])
            == ("0.02000", "0.00000", "0.00000"))
    plain, incoming = {"access_code": "", "tariff_id": 1}, {"access_code": "IN", "tariff_id": 2}
    product = loader.product_record({"id": 1, "name": "P", "currency": "USD"}, [incoming, plain])
    assert product["rating"] == [plain, incoming]
    assert loader.unpack(loader.pack(product)) == product


def test_changes_track_sets_deletes_and_hash_fields():
    changes = loader.Changes()
    changes.set("tg:alias:a", b"1")
    changes.remove("tg:alias:a")
    changes.hset("tg:rates:1", "44", b"r")
    other = loader.Changes()
    other.hremove("tg:rates:1", "44")
    other.set("tg:account:1", b"x")
    changes.merge(other)
    assert changes.delete == {"tg:alias:a"} and changes.put == {"tg:account:1": b"x"}
    assert changes.hput == {"tg:rates:1": {}} and changes.hdel == {"tg:rates:1": {"44"}}
    assert changes.keys() == ["tg:account:1", "tg:alias:a", "tg:rates:1"]


def test_table_output():
    text = table([{"id": 1, "name": "Acme", "limit": None},
                  {"id": 22, "name": "B", "limit": Decimal("1.5")}])
    assert text.splitlines() == ["ID  NAME  LIMIT", "1   Acme  -", "22  B     1.5"]


@pytest.mark.parametrize("argv", [["frobnicate"], ["account"],
                                  ["app", "create", "X", "--type", "nope"],
                                  ["rate", "create", "T"]])
def test_usage_errors_are_one_line_exit_2(argv, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("tollgate: ")


def test_help_exits_0(capsys):
    assert cli.main(["--help"]) == 0
    assert "customer" in capsys.readouterr().out


def test_settings_layering_flag_file_env(tmp_path, monkeypatch):
    path = tmp_path / "tollgate.toml"
    path.write_text("pg_port = 6000\nredis_port = 7000\n")
    monkeypatch.delenv("TOLLGATE_CONFIG", raising=False)
    monkeypatch.delenv("TOLLGATE_PG_PORT", raising=False)
    assert cli.load_settings(str(path)).pg_port == 6000
    monkeypatch.setenv("TOLLGATE_PG_PORT", "6001")
    settings = cli.load_settings(str(path))
    assert (settings.pg_port, settings.redis_port) == (6001, 7000)
    assert "TOLLGATE_CONFIG" not in __import__("os").environ  # --config does not leak
