"""Auth IDs of the pass-through IVR (seed: Rachel enters 4545 on Mark's phone)."""
import pytest

from billing.authid import AuthCodeError, AuthId, build_auth_id, check_code, matches_own_pin

pytestmark = pytest.mark.unit

MARK = {"id": "17785551210", "associated_number": "1778555", "service_password": "8989"}
ROAMING_PIN = {"authorize_paid_calls": True, "auth_code_as_account_id": True,
               "use_associated_number": True, "min_auth_code_length": 4,
               "max_auth_code_length": 4}


def test_seed_auth_id_is_associated_number_hash_code():
    assert build_auth_id(MARK, "4545", ROAMING_PIN) == AuthId("1778555#4545", True)


def test_without_associated_number_the_code_alone():
    settings = {**ROAMING_PIN, "use_associated_number": False}
    assert build_auth_id(MARK, "4545", settings) == AuthId("4545", True)


def test_code_not_an_account_id_is_a_pin_of_the_caller():
    settings = {**ROAMING_PIN, "use_associated_number": False, "auth_code_as_account_id": False}
    auth = build_auth_id(MARK, "8989", settings)
    assert auth == AuthId("8989", False)
    assert matches_own_pin(MARK, auth)
    assert not matches_own_pin(MARK, build_auth_id(MARK, "4545", settings))
    assert not matches_own_pin({"id": "x", "service_password": ""}, AuthId("", False))


def test_missing_associated_number_is_refused():
    with pytest.raises(AuthCodeError, match="no associated number"):
        build_auth_id({"id": "1", "associated_number": None}, "4545", ROAMING_PIN)


@pytest.mark.parametrize("code", ["454", "45454", "", "45a5", "4545#", "٤٥٤٥", "45 5"])
def test_bad_codes_are_refused(code):
    with pytest.raises(AuthCodeError):
        build_auth_id(MARK, code, ROAMING_PIN)


def test_length_bounds_come_from_settings_with_seed_defaults():
    assert check_code("4545") == "4545"
    with pytest.raises(AuthCodeError):
        check_code("45")
    settings = {**ROAMING_PIN, "min_auth_code_length": 3, "max_auth_code_length": 6}
    assert build_auth_id(MARK, "555", settings).value == "1778555#555"
    assert build_auth_id(MARK, "123456", settings).value == "1778555#123456"
    assert build_auth_id(MARK, "4545", {}).value == "4545"
