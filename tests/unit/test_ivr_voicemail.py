"""Voicemail, event by event, against an in-memory mailbox store: Jane's callers leave her
messages (greeting, beep, recording), and Jane listens to them, records her greeting,
changes her password and calls out from her mailbox."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import pytest

from ivr.actions import (
    Bridge,
    Hangup,
    Originate,
    Play,
    Record,
    SetTimer,
    StopPlay,
    StopRecord,
)
from ivr.apps.voicemail import (
    GREETING_MAX_S,
    LOCKOUT_FAILURES,
    MIN_MESSAGE_S,
    PROMPT_TIMEOUT_S,
    SILENCE_S,
    Deposit,
    Mailbox,
    Message,
)

pytestmark = pytest.mark.unit

JANE = "42027777100"          # the mailbox's account (her DID)
PIN = "4545"
CALLER = "5551234"
SPOKEN_CALLER = ["num_5", "num_5", "num_5", "num_1", "num_2", "num_3", "num_4"]
NOW = 1_800_000_000.0
DEST = "12125550123"
ANSWER_PROMPTS = ("vm_message_saved", "goodbye")


class FakeStore:
    """The Store protocol of ivr/apps/voicemail.py in memory (ivr.mailboxes.Mailboxes is
    proved against PostgreSQL in tests/integration)."""

    def __init__(self, root: Path, max_seconds: int = 120):
        self.root = root
        self.accounts = {JANE: {"id": JANE, "customer_id": 1, "service_password": PIN}}
        self.limit = max_seconds
        self.full: set[str] = set()
        self.inbox: list[Message] = []
        self.deposits: list[tuple[str, str, str, int, Path]] = []
        self.discarded: list[Path] = []
        self.greetings: list[tuple[str, Path]] = []
        self.greeting_fails = False
        self.passwords: list[tuple[str, str]] = []
        self.password_fails = False
        self.notified: list[str] = []
        self.fails: dict[str, int] = {}
        self.heard_calls: list[int] = []

    def account(self, account_id):
        return self.accounts.get(account_id)

    def pin_required(self, account_id):
        return True

    def max_seconds(self, account_id):
        return self.limit

    def is_full(self, account_id):
        return account_id in self.full

    def recording_path(self, account_id, key):
        return self.root / account_id / f"{key}.wav"

    def greeting_path(self, account_id):
        return self.root / account_id / "greeting.wav"

    def deposit(self, account_id, key, caller, seconds, path):
        self.deposits.append((account_id, key, caller, seconds, path))

    def discard(self, path):
        self.discarded.append(path)

    def messages(self, account_id, heard):
        return [m for m in self.inbox if m.heard == heard]

    def counts(self, account_id):
        return (sum(not m.heard for m in self.inbox), sum(m.heard for m in self.inbox))

    def mark_heard(self, message_id, account_id):
        self.heard_calls.append(message_id)
        for i, m in enumerate(self.inbox):
            if m.id == message_id:
                self.inbox[i] = replace(m, heard=True)
                return True
        return False

    def delete(self, message_id, account_id):
        before = len(self.inbox)
        self.inbox = [m for m in self.inbox if m.id != message_id]
        return len(self.inbox) < before

    def save_greeting(self, account_id, recorded):
        if self.greeting_fails:
            return False
        self.greetings.append((account_id, recorded))
        path = self.greeting_path(account_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"RIFF")
        return True

    def set_password(self, account_id, password):
        if self.password_fails:
            return False
        self.passwords.append((account_id, password))
        self.accounts[account_id] = {**self.accounts[account_id], "service_password": password}
        return True

    def notify(self, account_id):
        self.notified.append(account_id)

    def failures(self, key):
        return self.fails.get(key, 0)

    def record_failure(self, key):
        self.fails[key] = self.fails.get(key, 0) + 1
        return self.fails[key]

    def add(self, message_id: int, age_s: int, heard: bool = False, caller: str = CALLER):
        received = datetime.fromtimestamp(NOW - age_s, tz=timezone.utc)
        self.inbox.append(Message(message_id, caller, received, 30, heard,
                                  self.root / JANE / f"m{message_id}.wav"))


@pytest.fixture
def store(tmp_path):
    return FakeStore(tmp_path)


def played(actions) -> list[str]:
    return [name for a in actions if isinstance(a, Play) for name in a.prompts]


def keys(app, digits: str) -> list:
    actions: list = []
    for digit in digits:
        actions += app.on_digit(digit)
    return actions


# --- a caller leaves a message ---------------------------------------------------------------

def deposit(store, caller: str = CALLER) -> Deposit:
    return Deposit("c1", JANE, caller, store)


def to_recording(app: Deposit) -> list:
    """Greeting and beep played to their end: the actions that start the recording."""
    app.start()
    assert app.on_prompt_done() == [Play(("beep",))]
    return app.on_prompt_done()


def test_without_a_recorded_greeting_the_caller_hears_the_default_one(store):
    assert deposit(store).start() == [Play(("vm_not_available",))]


def test_the_owners_recorded_greeting_is_played_from_its_file(store):
    greeting = store.greeting_path(JANE)
    greeting.parent.mkdir(parents=True)
    greeting.write_bytes(b"RIFF")
    assert deposit(store).start() == [Play(("file:0",), files=(str(greeting),))]


def test_the_beep_then_a_recording_as_long_as_the_mailbox_allows(tmp_path):
    store = FakeStore(tmp_path, max_seconds=90)
    app = deposit(store)
    assert to_recording(app) == [Record(str(store.recording_path(JANE, "c1")), 90, SILENCE_S)]


def test_pound_skips_the_greeting_straight_to_the_beep(store):
    app = deposit(store)
    app.start()
    assert app.on_digit("5") == []  # any other key: the greeting goes on
    assert app.on_digit("#") == [StopPlay(), Play(("beep",))]
    assert app.on_digit("#") == []  # during the beep: nothing to skip
    assert app.on_prompt_done() == [Record(str(store.recording_path(JANE, "c1")), 120,
                                           SILENCE_S)]


@pytest.mark.parametrize("why", ["stopped", "silence", "max_length"])
def test_a_message_is_stored_with_its_caller_and_length_then_goodbye(store, why):
    app = deposit(store)
    to_recording(app)
    assert app.on_digit("1") == []
    assert app.on_digit("#") == [StopRecord()]
    assert app.on_recorded(12, why) == [Play(ANSWER_PROMPTS)]
    assert store.deposits == [(JANE, "c1", CALLER, 12, store.recording_path(JANE, "c1"))]
    assert app.on_prompt_done() == [Hangup("caller")]
    assert app.on_prompt_done() == []  # hung up once


def test_an_anonymous_callers_message_is_kept_without_a_number(store):
    app = deposit(store, caller="")
    to_recording(app)
    app.on_recorded(5, "silence")
    assert [(d[2], d[3]) for d in store.deposits] == [("", 5)]


def test_a_message_shorter_than_the_minimum_is_thrown_away(store):
    app = deposit(store)
    to_recording(app)
    assert app.on_recorded(MIN_MESSAGE_S - 1, "silence") == [Play(("goodbye",))]
    assert store.deposits == []
    assert store.discarded == [store.recording_path(JANE, "c1")]
    assert app.on_prompt_done() == [Hangup("caller")]


@pytest.mark.parametrize("beeped", [False, True])
def test_a_caller_who_hangs_up_before_recording_leaves_nothing(store, beeped):
    app = deposit(store)
    actions = app.start()
    if beeped:
        actions += app.on_prompt_done()
    assert app.on_caller_hangup() == []
    # the prompt that was playing ends, a late key, a stray end of recording: nothing more
    assert app.on_prompt_done() == [] and app.on_digit("#") == []
    assert app.on_recorded(8, "hangup") == []
    assert not any(isinstance(a, Record) for a in actions)
    assert store.deposits == [] and store.discarded == []


def test_a_caller_who_hangs_up_while_recording_still_leaves_the_message(store):
    app = deposit(store)
    to_recording(app)
    assert app.on_caller_hangup() == []
    assert app.on_recorded(7, "hangup") == []  # nobody to say anything to
    assert store.deposits == [(JANE, "c1", CALLER, 7, store.recording_path(JANE, "c1"))]


def test_a_hang_up_at_the_beep_is_no_message(store):
    app = deposit(store)
    to_recording(app)
    app.on_caller_hangup()
    assert app.on_recorded(0, "hangup") == []
    assert store.deposits == [] and store.discarded == [store.recording_path(JANE, "c1")]


def test_a_full_mailbox_says_so_and_records_nothing(store):
    store.full.add(JANE)
    app = deposit(store)
    assert app.start() == [Play(("vm_mailbox_full", "goodbye"))]
    assert app.on_digit("#") == []
    assert app.on_prompt_done() == [Hangup("caller")]
    assert app.on_prompt_done() == []
    assert store.deposits == []


# --- the owner's mailbox ---------------------------------------------------------------------

def mailbox(store, owner: str = JANE, trusted: bool = True, **kw) -> Mailbox:
    kw.setdefault("verified", trusted)  # trusted: her own phone, unless a test says ANI
    return Mailbox("c1", owner, "420603123456", store, trusted=trusted, now=lambda: NOW, **kw)


def logged_in(store, **kw) -> Mailbox:
    """Jane on her own phone, the welcome and main menu said to their end."""
    app = mailbox(store, **kw)
    app.start()
    assert app.on_prompt_done() == [SetTimer(PROMPT_TIMEOUT_S)]
    return app


def header(number: str, age: list[str], caller: list[str] | None = None) -> tuple:
    """The prompts of one message, as the message menu plays them (English)."""
    return ("vm_message", number, "vm_from", *(caller or SPOKEN_CALLER), "vm_received",
            *age, "vm_ago", "file:0", "vm_message_menu")


MAIN_MENU = Play(("vm_main_menu",))


@pytest.mark.parametrize("new, saved, counts", [
    (2, 1, ("num_2", "vm_new_messages", "vm_and", "num_1", "vm_saved_message")),
    (1, 0, ("num_1", "vm_new_message", "vm_and", "num_0", "vm_saved_messages")),
    (0, 3, ("num_0", "vm_new_messages", "vm_and", "num_3", "vm_saved_messages")),
])
def test_the_owner_on_her_own_phone_hears_her_counts_then_the_main_menu(store, new, saved,
                                                                        counts):
    for i in range(new + saved):
        store.add(i + 1, 60, heard=i >= new)
    assert mailbox(store).start() == [SetTimer(None),
                                      Play(("vm_you_have", *counts, "vm_main_menu"))]


def test_a_wrong_password_is_counted_and_asked_again_then_the_right_one_logs_in(store):
    app = mailbox(store, trusted=False)
    assert app.start() == [SetTimer(None), Play(("enter_password",))]
    app.on_prompt_done()
    assert played(keys(app, "1111#")) == ["invalid_password", "enter_password"]
    assert store.fails == {f"vm:{JANE}": 1}
    assert played(keys(app, PIN + "#"))[0] == "vm_you_have"
    assert store.fails == {f"vm:{JANE}": 1}


def test_three_wrong_passwords_say_goodbye_and_hang_up(store):
    app = mailbox(store, trusted=False)
    app.start()
    keys(app, "1111#")
    keys(app, "2222#")
    assert played(keys(app, "3333#")) == ["goodbye"]
    assert app.on_prompt_done() == [Hangup("caller")]
    assert store.fails == {f"vm:{JANE}": 3}


def test_silence_at_the_password_prompt_is_an_attempt(store):
    app = mailbox(store, trusted=False)
    app.start()
    app.on_prompt_done()
    assert played(app.on_timer("prompt")) == ["enter_password"]
    app.on_prompt_done()
    app.on_timer("prompt")
    app.on_prompt_done()
    assert played(app.on_timer("prompt")) == ["goodbye"]


def test_after_too_many_wrong_passwords_even_the_right_one_is_refused(store):
    for guesses in ("1111#1112#1113#", "1114#1115#"):  # two calls of a guesser
        app = mailbox(store, trusted=False)
        app.start()
        keys(app, guesses)
    assert store.fails[f"vm:{JANE}"] == LOCKOUT_FAILURES
    app = mailbox(store, trusted=False)
    app.start()
    assert played(keys(app, PIN + "#")) == ["invalid_password", "enter_password"]


def test_one_failure_short_of_the_lockout_the_right_password_still_logs_in(store):
    store.fails[f"vm:{JANE}"] = LOCKOUT_FAILURES - 1
    app = mailbox(store, trusted=False)
    app.start()
    assert "vm_you_have" in played(keys(app, PIN + "#"))


def test_a_mailbox_without_a_password_cannot_be_opened_by_password(store):
    store.accounts[JANE]["service_password"] = ""
    app = mailbox(store, trusted=False)
    app.start()
    assert played(keys(app, "#")) == []          # nothing keyed: still waiting
    assert played(keys(app, "0#")) == ["invalid_password", "enter_password"]


def test_at_the_access_number_the_mailbox_number_then_its_password(store):
    app = mailbox(store, owner="", trusted=False)
    assert app.start() == [SetTimer(None), Play(("vm_enter_mailbox",))]
    app.on_prompt_done()
    assert played(keys(app, JANE + "#")) == ["enter_password"]
    assert played(keys(app, PIN + "#"))[0] == "vm_you_have"
    assert app.owner == JANE


def test_an_unknown_mailbox_sounds_like_a_wrong_password(store):
    answers = []
    for number in (JANE, "999"):
        app = mailbox(store, owner="", trusted=False)
        app.start()
        keys(app, number)
        asked = app.on_digit("#")
        answers.append((asked, keys(app, "1111#"), keys(app, "1112#"), keys(app, "1113#")))
    assert answers[0] == answers[1]
    assert played(answers[1][1]) == ["invalid_password", "enter_password"]
    assert played(answers[1][3]) == ["goodbye"]
    assert store.fails == {f"vm:{JANE}": 3, "vm:999": 3}


def test_a_locked_mailbox_at_the_access_number_refuses_its_right_password(store):
    store.fails[f"vm:{JANE}"] = LOCKOUT_FAILURES
    app = mailbox(store, owner="", trusted=False)
    app.start()
    keys(app, JANE + "#")
    assert played(keys(app, PIN + "#")) == ["invalid_password", "enter_password"]


# --- listening --------------------------------------------------------------------------------

@pytest.fixture
def inbox(store):
    """Two new messages (five minutes and two and a half hours old) and a saved one."""
    store.add(1, 300)
    store.add(2, 9000, caller="")
    store.add(3, 86400, heard=True)
    return store


def test_key_one_plays_the_first_new_message_with_its_caller_age_and_file(inbox):
    app = logged_in(inbox)
    assert app.on_digit("1") == [SetTimer(None), Play(
        header("num_1", ["num_5", "minutes"]), files=(str(inbox.root / JANE / "m1.wav"),))]


@pytest.mark.parametrize("age_s, spoken", [(0, ["num_0", "seconds"]),
                                           (61, ["num_2", "minutes"]),   # rounded up
                                           (3599, ["num_1", "hour"]),
                                           (9000, ["num_2", "hours"])])  # whole hours
def test_a_messages_age_is_said_in_minutes_under_an_hour_else_in_hours(store, age_s, spoken):
    store.add(1, age_s)
    app = logged_in(store)
    assert played(app.on_digit("1")) == list(header("num_1", spoken))


def test_an_anonymous_message_is_from_an_unknown_caller(inbox):
    app = logged_in(inbox)
    app.on_digit("1")
    app.on_prompt_done()
    assert played(app.on_digit("4"))[:5] == ["vm_message", "num_2", "vm_from",
                                             "vm_unknown_caller", "vm_received"]


def test_a_caller_number_with_a_plus_is_read_out(store):
    store.add(1, 300, caller="+" + CALLER)
    app = logged_in(store)
    assert played(app.on_digit("1")) == list(header("num_1", ["num_5", "minutes"]))


def test_in_spanish_the_age_is_not_followed_by_ago(store):
    store.add(1, 300)
    app = logged_in(store, language="es")
    expected = [p for p in header("num_1", ["num_5", "minutes"]) if p != "vm_ago"]
    assert played(app.on_digit("1")) == expected  # "recibido hace cinco minutos"


def test_key_two_lists_the_saved_messages(inbox):
    app = logged_in(inbox)
    actions = app.on_digit("2")
    assert played(actions)[1] == "num_1"
    assert actions[-1].files == (str(inbox.root / JANE / "m3.wav"),)


def test_no_new_messages_is_said_before_the_main_menu(store):
    app = logged_in(store)
    assert played(app.on_digit("1")) == ["vm_no_messages", "vm_main_menu"]


def test_one_repeats_the_message(inbox):
    app = logged_in(inbox)
    first = app.on_digit("1")
    app.on_prompt_done()
    assert app.on_digit("1") == first
    assert inbox.heard_calls == []


def test_two_saves_it_and_says_so_before_the_next_message(inbox):
    app = logged_in(inbox)
    app.on_digit("1")
    actions = app.on_digit("2")
    assert actions[:2] == [SetTimer(None), StopPlay()]
    assert played(actions)[:3] == ["vm_saved", "vm_message", "num_2"]
    assert [m.heard for m in inbox.inbox] == [True, False, True]


def test_three_deletes_it_and_says_so_before_the_next_message(inbox):
    app = logged_in(inbox)
    app.on_digit("1")
    actions = app.on_digit("3")
    assert played(actions)[:3] == ["vm_deleted", "vm_message", "num_2"]
    assert actions[-1].files == (str(inbox.root / JANE / "m2.wav"),)
    assert [m.id for m in inbox.inbox] == [2, 3]


def test_four_skips_it_and_it_stays_new(inbox):
    app = logged_in(inbox)
    app.on_digit("1")
    assert played(app.on_digit("4"))[:2] == ["vm_message", "num_2"]
    assert inbox.heard_calls == [] and inbox.counts(JANE) == (2, 1)


def test_pound_goes_to_the_next_message_and_marks_this_one_heard(inbox):
    app = logged_in(inbox)
    app.on_digit("1")
    assert played(app.on_digit("#"))[:2] == ["vm_message", "num_2"]
    assert inbox.heard_calls == [1]


def test_star_goes_back_to_the_main_menu(inbox):
    app = logged_in(inbox)
    app.on_digit("1")
    assert app.on_digit("*") == [SetTimer(None), MAIN_MENU]
    assert inbox.counts(JANE) == (2, 1)


def test_after_the_last_message_no_more_messages_and_the_phones_are_told(inbox):
    app = logged_in(inbox)
    app.on_digit("1")
    app.on_digit("#")
    assert played(app.on_digit("3")) == ["vm_deleted", "vm_no_more_messages", "vm_main_menu"]
    assert inbox.notified == [JANE]
    assert app.on_caller_hangup() == []
    assert inbox.notified == [JANE]  # once


def test_skipping_every_message_changes_nothing_and_notifies_no_one(inbox):
    app = logged_in(inbox)
    app.on_digit("1")
    app.on_digit("4")
    assert played(app.on_digit("4")) == ["vm_no_more_messages", "vm_main_menu"]
    app.on_caller_hangup()
    assert inbox.notified == []


def test_a_heard_message_left_by_the_main_menu_is_notified_when_the_owner_hangs_up(inbox):
    app = logged_in(inbox)
    app.on_digit("1")
    app.on_digit("2")
    app.on_digit("*")
    assert inbox.notified == []
    app.on_caller_hangup()
    assert inbox.notified == [JANE]


def test_saving_a_saved_message_says_nothing_and_changes_nothing(inbox):
    app = logged_in(inbox)
    app.on_digit("2")
    assert played(app.on_digit("2")) == ["vm_no_more_messages", "vm_main_menu"]
    assert inbox.heard_calls == [] and inbox.notified == []


def test_a_saved_message_can_be_deleted(inbox):
    app = logged_in(inbox)
    app.on_digit("2")
    assert played(app.on_digit("3"))[:2] == ["vm_deleted", "vm_no_more_messages"]
    assert [m.id for m in inbox.inbox] == [1, 2] and inbox.notified == [JANE]


def test_an_invalid_key_in_the_message_menu_plays_the_message_again_three_and_goodbye(inbox):
    app = logged_in(inbox)
    first = played(app.on_digit("1"))
    assert played(app.on_digit("7")) == first
    assert played(app.on_digit("8")) == first
    assert played(app.on_digit("9")) == ["goodbye"]
    assert app.on_prompt_done() == [Hangup("caller")]


# --- the main menu ----------------------------------------------------------------------------

def test_star_says_goodbye_and_hangs_up(store):
    app = logged_in(store)
    assert app.on_digit("*") == [SetTimer(None), StopPlay(), Play(("goodbye",))]
    assert app.on_prompt_done() == [Hangup("caller")]


def test_three_invalid_keys_in_the_main_menu_say_goodbye(store):
    app = logged_in(store)
    again = app.on_digit("9")
    assert again == [SetTimer(None), StopPlay(), Play(("vm_you_have", "num_0",
                                                       "vm_new_messages", "vm_and", "num_0",
                                                       "vm_saved_messages", "vm_main_menu"))]
    app.on_prompt_done()
    assert app.on_timer("prompt") == again  # silence is an attempt too
    app.on_prompt_done()
    assert played(app.on_digit("0")) == ["goodbye"]
    assert app.on_prompt_done() == [Hangup("caller")]


def test_three_records_the_greeting_after_the_instructions_and_the_beep(store):
    app = logged_in(store)
    assert app.on_digit("3") == [SetTimer(None), Play(("vm_record_greeting", "beep"))]
    assert app.on_digit("5") == []
    recording = store.recording_path(JANE, "greeting-c1")
    assert app.on_prompt_done() == [Record(str(recording), GREETING_MAX_S, SILENCE_S)]
    assert app.on_digit("#") == [StopRecord()]
    assert app.on_recorded(4, "stopped") == [Play(("vm_greeting_saved",))]
    assert store.greetings == [(JANE, recording)]
    assert app.on_prompt_done() == [SetTimer(None), MAIN_MENU]


def test_the_greeting_the_owner_records_is_what_her_next_caller_hears(store):
    app = logged_in(store)
    app.on_digit("3")
    app.on_prompt_done()
    app.on_recorded(4, "silence")
    assert deposit(store).start() == [Play(("file:0",),
                                           files=(str(store.greeting_path(JANE)),))]


def test_pound_during_the_greeting_instructions_starts_recording_at_once(store):
    app = logged_in(store)
    app.on_digit("3")
    assert app.on_digit("#") == [StopPlay(), Record(str(store.recording_path(
        JANE, "greeting-c1")), GREETING_MAX_S, SILENCE_S)]


def test_a_greeting_too_short_is_thrown_away_and_the_old_one_kept(store):
    app = logged_in(store)
    app.on_digit("3")
    app.on_prompt_done()
    assert app.on_recorded(0, "silence") == [SetTimer(None), MAIN_MENU]
    assert store.discarded == [store.recording_path(JANE, "greeting-c1")]
    assert store.greetings == []


def test_a_greeting_the_store_cannot_keep_is_said_to_be_unavailable(store):
    store.greeting_fails = True
    app = logged_in(store)
    app.on_digit("3")
    app.on_prompt_done()
    assert app.on_recorded(4, "stopped") == [Play(("unavailable",))]
    assert app.on_prompt_done() == [SetTimer(None), MAIN_MENU]


def test_a_greeting_cut_by_the_owners_hang_up_is_thrown_away(store):
    app = logged_in(store)
    app.on_digit("3")
    app.on_prompt_done()
    assert app.on_caller_hangup() == []   # ivr/server.py: on_caller_disconnected
    assert app.on_recorded(3, "hangup") == []  # then, once the file is sealed
    assert store.discarded == [store.recording_path(JANE, "greeting-c1")]
    assert store.greetings == []


def test_four_changes_the_password_and_the_next_login_takes_the_new_one(store):
    app = logged_in(store)
    assert played(app.on_digit("4")) == ["vm_enter_new_password"]
    assert played(keys(app, "123#")) == ["vm_enter_new_password"]  # under four digits
    assert store.passwords == []
    assert played(keys(app, "9876#")) == ["vm_password_changed", "vm_main_menu"]
    assert store.passwords == [(JANE, "9876")]
    again = mailbox(store, trusted=False)
    again.start()
    assert played(keys(again, PIN + "#")) == ["invalid_password", "enter_password"]
    assert played(keys(again, "9876#"))[0] == "vm_you_have"


def test_a_password_longer_than_sixteen_digits_is_refused(store):
    app = logged_in(store)
    app.on_digit("4")
    assert played(keys(app, "1" * 17)) == ["vm_enter_new_password"]
    assert store.passwords == []


def test_a_password_change_that_fails_says_so_and_the_menu_goes_on(store):
    store.password_fails = True
    app = logged_in(store)
    app.on_digit("4")
    assert played(keys(app, "9876#")) == ["unavailable", "vm_main_menu"]


def test_three_failed_password_entries_go_back_to_the_main_menu_not_goodbye(store):
    app = logged_in(store)
    app.on_digit("4")
    keys(app, "1#")
    keys(app, "2#")
    assert played(keys(app, "3#")) == ["vm_main_menu"]
    assert store.passwords == []


def calling(store, **kw) -> Mailbox:
    app = logged_in(store, **kw)
    assert played(app.on_digit("5")) == ["enter_destination"]
    keys(app, DEST)
    actions = app.on_digit("#")
    assert actions == [SetTimer(None), StopPlay(), Play(("please_wait",)),
                       Originate(auth_id=JANE, dest=DEST, cli=JANE)]
    assert app.on_prompt_done() == []  # please_wait ended: waiting for the far end
    return app


def test_five_calls_out_billed_to_the_mailbox_with_its_number_then_the_menu_again(store):
    app = calling(store)
    assert app.on_toll_ringing() == [StopPlay(), Play(("ringback",), loop=True)]
    assert app.on_toll_answered(600) == [StopPlay(), Bridge()]
    assert app.on_digit("*") == [] and app.on_timer("prompt") == []
    assert app.on_toll_ended(200) == [StopPlay(), SetTimer(None), MAIN_MENU]
    assert played(app.on_digit("*")) == ["goodbye"]


@pytest.mark.parametrize("code, prompt", [(402, "insufficient_funds"), (404, "not_found"),
                                          (486, "busy"), (500, "unavailable")])
def test_a_refused_call_out_is_explained_then_the_main_menu(store, code, prompt):
    app = calling(store)
    assert app.on_toll_ended(code) == [StopPlay(), Play((prompt,))]
    assert app.on_toll_answered() == []  # too late
    assert app.on_prompt_done() == [SetTimer(None), MAIN_MENU]


@pytest.mark.parametrize("answered", [False, True])
def test_the_owner_hanging_up_during_a_call_out_ends_the_outgoing_leg(store, answered):
    app = calling(store)
    if answered:
        app.on_toll_answered()
    assert app.on_caller_hangup() == [Hangup("toll")]


def test_the_owner_hanging_up_in_a_menu_leaves_no_outgoing_leg(store):
    app = logged_in(store)
    assert app.on_caller_hangup() == []
    assert app.on_toll_ended(200) == [] and app.on_toll_ringing() == []


def test_without_outgoing_calls_five_is_an_invalid_key(store):
    app = logged_in(store, allow_calls=False)
    actions = app.on_digit("5")
    assert not any(isinstance(a, Originate) for a in actions)
    assert played(actions)[-1] == "vm_main_menu_no_calls"
    assert "enter_destination" not in played(actions)


def test_an_owner_known_by_caller_id_alone_keys_the_password_before_calling_out(store):
    app = logged_in(store, verified=False)  # the mobile's ANI: trusted, not verified
    actions = app.on_digit("5")
    assert played(actions)[-1] == "enter_password"
    for digit in PIN + "#":
        actions = app.on_digit(digit)
    assert played(actions)[-1] == "enter_destination"
    for digit in DEST + "#":
        actions = app.on_digit(digit)
    assert Originate(auth_id=JANE, dest=DEST, cli=JANE) in actions


def test_without_a_service_password_a_caller_known_by_caller_id_cannot_call_out(store):
    store.accounts[JANE]["service_password"] = ""
    app = logged_in(store, verified=False)
    actions = app.on_digit("5")
    assert played(actions)[:2] == ["no_permission", "vm_main_menu"]
    assert not any(isinstance(a, Originate) for a in actions)


def test_wrong_passwords_before_calling_out_lock_the_mailbox(store):
    app = logged_in(store, verified=False)
    app.on_digit("5")
    actions: list = []
    for _ in range(LOCKOUT_FAILURES):  # three tries a question, five in a row lock
        for digit in "0000#":
            actions = app.on_digit(digit)
        if played(actions)[-1:] == ["vm_main_menu"]:
            app.on_digit("5")
    assert played(actions) == ["locked_out"]
    assert app.on_prompt_done() == [Hangup("caller")]
    assert not any(isinstance(a, Originate) for a in actions)
