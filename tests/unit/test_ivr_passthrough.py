"""The pass-through IVR's decisions, event by event, with a dict-backed directory."""
from __future__ import annotations

import pytest

from ivr.passthrough import (
    BRIDGED,
    DONE,
    FAREWELL,
    ORIGINATING,
    Bridge,
    Caller,
    Hangup,
    Originate,
    PassThrough,
    Play,
    SetTimer,
    StopPlay,
    refusal_prompt,
)

pytestmark = pytest.mark.unit

MARK = {"id": "17785551210", "customer_id": 1, "associated_number": "1778555"}
RACHEL = {"id": "17785551209", "customer_id": 1, "associated_number": "1778555"}
STRANGER = {"id": "4420999", "customer_id": 2, "associated_number": "1778555"}
SEED_APP = {"use_associated_number": True, "auth_code_as_account_id": True}


class FakeDirectory:
    def __init__(self, failures: int = 0):
        self.accounts = {a["id"]: a for a in (MARK, RACHEL, STRANGER)}
        self.aliases = {"1778555#4545": {"id": "1778555#4545", "account_id": RACHEL["id"]},
                        "1778555#6666": {"id": "1778555#6666", "account_id": STRANGER["id"]}}
        self.fails = {MARK["id"]: failures}
        self.ttls: list[int] = []

    def account(self, account_id):
        return self.accounts.get(account_id)

    def alias(self, alias_id):
        return self.aliases.get(alias_id)

    def failures(self, account_id):
        return self.fails.get(account_id, 0)

    def record_failure(self, account_id, ttl):
        self.fails[account_id] = self.fails.get(account_id, 0) + 1
        self.ttls.append(ttl)
        return self.fails[account_id]


def session(failures: int = 0, **settings) -> PassThrough:
    app = {"id": 1, "type": "pass_through", "settings": {**SEED_APP, **settings}}
    caller = Caller(call_id="c1", account=MARK, app=app, dest="442071234567", session="c1")
    return PassThrough(caller, FakeDirectory(failures))


def enter(app: PassThrough, digits: str) -> list:
    actions: list = []
    for digit in digits:
        actions += app.on_digit(digit)
    return actions


def test_start_prompts_for_the_code():
    assert session().start() == [Play(("enter_code",))]


def test_prompt_end_starts_the_default_timeout():
    app = session()
    app.start()
    assert app.on_prompt_done() == [SetTimer(3.0)]


def test_rachels_code_on_marks_phone_originates_with_her_auth_id():
    app = session()
    app.start()
    actions = enter(app, "4545")
    assert actions[0] == StopPlay()
    assert Originate("1778555#4545") in actions
    assert app.state == ORIGINATING and app.auth_id == "1778555#4545"


def test_answer_bridges_and_toll_hangup_hangs_up_the_caller():
    app = session()
    app.start()
    enter(app, "4545")
    assert app.on_toll_answered() == [StopPlay(), Bridge()]
    assert app.state == BRIDGED
    assert app.on_toll_ended(200) == [Hangup("caller")]
    assert app.state == DONE


def test_caller_hangup_while_bridged_hangs_up_the_toll_leg():
    app = session()
    app.start()
    enter(app, "4545")
    app.on_toll_answered()
    assert Hangup("toll") in app.on_caller_hangup()


def test_caller_hangup_while_collecting_leaves_no_toll_leg():
    app = session()
    app.start()
    assert Hangup("toll") not in app.on_caller_hangup()


@pytest.mark.parametrize("code, prompt", [(402, "insufficient_funds"), (403, "forbidden"),
                                          (404, "not_found"), (486, "busy"),
                                          (480, "unavailable"), (503, "unavailable"),
                                          (500, "unavailable")])
def test_refused_toll_leg_plays_the_reason_then_hangs_up(code, prompt):
    app = session()
    app.start()
    enter(app, "4545")
    actions = app.on_toll_ended(code)
    assert Play((prompt,)) in actions and app.state == FAREWELL
    assert app.on_prompt_done() == [Hangup("caller")]
    assert refusal_prompt(code) == prompt


def test_wrong_code_is_counted_and_prompted_again():
    app = session()
    app.start()
    actions = enter(app, "1111")
    assert Play(("invalid_code", "enter_code")) in actions
    assert app.directory.fails[MARK["id"]] == 1
    assert app.directory.ttls == [300]


def test_three_wrong_codes_say_goodbye_and_hang_up():
    app = session()
    app.start()
    enter(app, "1111")
    enter(app, "2222")
    actions = enter(app, "3333")
    assert Play(("goodbye",)) in actions and app.state == FAREWELL
    assert app.on_prompt_done() == [Hangup("caller")]
    assert not any(isinstance(a, Originate) for a in actions)


def test_max_login_attempts_setting_is_honoured():
    app = session(max_login_attempts=1)
    app.start()
    assert Play(("goodbye",)) in enter(app, "1111")


def test_another_customers_alias_is_an_invalid_code():
    app = session()
    app.start()
    assert Play(("invalid_code", "enter_code")) in enter(app, "6666")


def test_locked_out_account_is_not_prompted():
    app = session(failures=5)
    assert app.start() == [SetTimer(None), Play(("locked_out",))]
    assert app.on_prompt_done() == [Hangup("caller")]


def test_reaching_lockout_failures_locks_out_during_the_call():
    app = session(failures=4)
    app.start()
    assert Play(("locked_out",)) in enter(app, "1111")


def test_timeout_without_digits_prompts_again_without_counting_a_failure():
    app = session()
    app.start()
    app.on_prompt_done()
    assert app.on_timeout() == [SetTimer(None), Play(("enter_code",))]
    assert app.directory.fails[MARK["id"]] == 0


def test_short_code_at_timeout_is_a_failed_attempt():
    app = session(min_auth_code_length=4, max_auth_code_length=6)
    app.start()
    enter(app, "45")
    assert app.on_timeout() == [SetTimer(None), Play(("enter_code",))]
    assert app.attempts == 1


def test_variable_length_code_ends_at_timeout():
    app = session(min_auth_code_length=4, max_auth_code_length=6)
    app.start()
    assert enter(app, "4545")[-1] == SetTimer(3.0)
    assert Originate("1778555#4545") in app.on_timeout()


def test_confirm_by_pound_ends_the_code():
    app = session(confirm_by_pound=True)
    app.start()
    assert not any(isinstance(a, Originate) for a in enter(app, "4545"))
    assert Originate("1778555#4545") in app.on_digit("#")


def test_star_clears_the_digits():
    app = session()
    app.start()
    enter(app, "12*")
    assert Originate("1778555#4545") in enter(app, "4545")


def test_too_long_code_with_pound_is_invalid():
    app = session(confirm_by_pound=True)
    app.start()
    assert Play(("invalid_code", "enter_code")) in enter(app, "45455#")


def test_digits_after_the_code_are_ignored():
    app = session()
    app.start()
    enter(app, "4545")
    assert app.on_digit("1") == []
    assert app.on_timeout() == []


def test_prompt_timeout_setting():
    app = session(default_prompt_timeout=7)
    app.start()
    assert app.on_prompt_done() == [SetTimer(7.0)]


def test_bare_pin_must_be_the_callers_service_password_and_the_caller_pays():
    app = session(use_associated_number=False, auth_code_as_account_id=False)
    app.caller.account = {**MARK, "service_password": "8989"}
    app.start()
    assert Play(("invalid_code", "enter_code")) in enter(app, "4545")
    assert Originate(MARK["id"]) in enter(app, "8989")


def test_code_naming_an_account_of_the_same_customer_is_accepted():
    app = session(use_associated_number=False, auth_code_as_account_id=True,
                  min_auth_code_length=11, max_auth_code_length=11)
    app.start()
    assert Originate(RACHEL["id"]) in enter(app, RACHEL["id"])


def test_account_without_associated_number_cannot_enter_codes():
    app = session()
    app.caller.account = {**MARK, "associated_number": ""}
    app.start()
    assert Play(("invalid_code", "enter_code")) in enter(app, "4545")
