"""Digit collection (ivr.collect.Ask): what ends a question, and what a caller's odd keys do."""
from __future__ import annotations

import pytest

from ivr.actions import Play, SetTimer, StopPlay
from ivr.collect import Ask, Failed, Got, Key

pytestmark = pytest.mark.unit


def feed(ask: Ask, digits: str):
    result = None
    for digit in digits:
        result = ask.on_digit(digit)
    return result


def test_max_length_ends_the_input_and_the_first_digit_barges_in():
    ask = Ask(("enter_card",), min_len=4, max_len=4)
    assert ask.start() == [SetTimer(None), Play(("enter_card",))]
    assert ask.on_digit("1") == [StopPlay(), SetTimer(3.0)]
    assert feed(ask, "234") == Got("1234")


def test_pound_ends_a_variable_length_input_once_min_length_is_reached():
    ask = Ask(("enter_destination",), min_len=3, max_len=32)
    ask.start()
    assert feed(ask, "12#") == [SetTimer(None), StopPlay(), Play(("enter_destination",))]
    assert feed(ask, "12125550123#") == Got("12125550123")


def test_confirm_by_pound_waits_for_pound_and_refuses_overlong_input():
    ask = Ask(("enter_card",), min_len=2, max_len=3, confirm_by_pound=True)
    ask.start()
    assert feed(ask, "123") == [SetTimer(3.0)]  # max length reached, still waiting for #
    assert ask.on_digit("#") == Got("123")
    assert feed(ask, "1234") == [SetTimer(None), StopPlay(), Play(("enter_card",))]


def test_star_clears_and_letters_are_ignored():
    ask = Ask(("x",), min_len=3, max_len=3)
    ask.start()
    feed(ask, "12*")
    assert feed(ask, "AB") == [SetTimer(3.0)]
    assert ask.digits == ""
    assert feed(ask, "987") == Got("987")


def test_timeout_takes_what_is_long_enough_else_asks_again_until_attempts_run_out():
    ask = Ask(("x",), min_len=2, max_len=8, attempts=2)
    ask.start()
    ask.on_prompt_done()
    feed(ask, "12")
    assert ask.on_timeout() == Got("12")
    feed(ask, "1")
    assert ask.on_timeout() == [SetTimer(None), StopPlay(), Play(("x",))]
    assert ask.on_timeout() == []  # the prompt is playing again: no timer runs
    ask.on_prompt_done()
    assert ask.on_timeout() == Failed()


def test_menu_keys_answer_only_as_the_first_digit():
    ask = Ask(("menu",), min_len=1, max_len=32, keys="#")
    ask.start()
    assert ask.on_digit("#") == Key("#")
    feed(ask, "12")
    assert ask.on_digit("#") == Got("12")
