"""Voice application settings: one typed schema per application type, seed defaults and help.

Names are the seed's options (voice-application-settings.txt) in snake_case. Stored
settings are complete: complete() fills every default and refuses unknown or mistyped
options, so the IVR reads a setting without guessing its default.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from provisioning import validate
from provisioning.validate import BadInput

TYPES = ("pass_through", "prepaid", "callback", "voucher_topup", "balance_info",
         "balance_transfer", "voicemail")


@dataclass(frozen=True)
class Option:
    """One setting: its default fixes its type; choices and minimum narrow it."""
    name: str
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    minimum: int = 0
    kind: str = ""  # "rule" (translation rule), "money" (decimal text); else from default

    @property
    def type_name(self) -> str:
        if self.kind:
            return self.kind
        if self.choices:
            return "one of " + "/".join(self.choices)
        return {bool: "boolean", int: "whole number", str: "text", list: "list"}[type(self.default)]


def _b(name: str, default: bool, help: str) -> Option:
    return Option(name, default, help)


def _i(name: str, default: int, help: str, minimum: int = 0) -> Option:
    return Option(name, default, help, minimum=minimum)


def _c(name: str, default: str, choices: tuple[str, ...], help: str) -> Option:
    return Option(name, default, help, choices=choices)


def _rule(name: str, help: str) -> Option:
    return Option(name, "", help, kind="rule")


BALANCE_MODES = ("backward_compatibility", "funds_balance", "balance")
LOW_BALANCE = ("none", "disconnect", "no_outgoing_calls")
WARNING_TYPES = ("beep", "voice")

PROMPTS = [
    Option("brand_prompts", "", "folder of brand prompts tried before the default ones"),
    _b("confirm_by_pound", False, "suggest confirming multi-digit input with #"),
    _i("default_prompt_timeout", 3, "seconds to wait for a key before replaying a prompt", 1),
    Option("languages", [], "languages offered to the caller, in order (e.g. [en, es])"),
    _b("conf_language_list_preferred", False, "prefer this language list over the account's"),
]
LANGUAGE_MENU = [
    _b("brief_language_announcement", False, "say 'select your language or press 1' only"),
    _b("language_auto_select", False, "continue in the first language if none is chosen"),
    _i("max_language_selection_attempts", 3, "times the language menu is played", 1),
]
BALANCE_SAY = [
    _c("credit_balance_announcement", "backward_compatibility", BALANCE_MODES,
       "credit accounts: announce funds/balance, balance, or as before MR35"),
    _b("announce_credit_limit", False, "announce the credit limit after the balance"),
]
MOH = [
    _b("play_pre_ring_moh", False, "play music on hold until the far end rings"),
    Option("moh_class", "", "music on hold class (folder) for the pre-ring MOH"),
]
WARNINGS = [
    _i("disconnection_warning_interval", 0, "seconds before disconnect to warn (0 = never)"),
    _i("disconnection_warning_repeat", 0, "repeat the warning every N seconds (0 = once)"),
    _c("disconnection_warning_type", "beep", WARNING_TYPES, "beep, or say the seconds left"),
]
TIME_SAY = [
    _b("announce_time", False, "announce the maximum call duration before connecting"),
    _b("use_announcement_tariff", False, "announce time by the ANNOUNCE+DNIS rating entry"),
    _c("seconds_rounding_mode", "none", ("none", "up"), "say seconds, or round up to minutes"),
]
ACCOUNTING = [
    _i("disconnect_call_before", 0, "disconnect this many seconds before funds run out"),
    _c("restrict_low_balance", "none", LOW_BALANCE, "what to do when the balance is too low"),
]
CARD = [
    _i("min_card_length", 11, "minimum length of a card number", 1),
    _i("max_card_length", 11, "maximum length of a card number", 1),
]
VOUCHER = [
    _i("min_voucher_length", 11, "minimum length of a voucher number", 1),
    _i("max_voucher_length", 11, "maximum length of a voucher number", 1),
]
LOGIN = [_i("max_login_attempts", 3, "attempts to enter a card number or code", 1)]
SIP_INFO = [_b("use_sip_account_info", False,
               "trust the account Kamailio authenticated instead of the ANI (on-net only)")]
ANI_RULE = [_rule("ani_translation_rule",
                  "sed rule turning the ANI into an account ID (s/^0/ani44/)")]

PASS_THROUGH = [
    _b("authorize_paid_calls", False, "ask for an authorization code before paid calls"),
    _b("auth_code_as_account_id", False, "treat the auth code as part of the payer's account ID"),
    _b("use_associated_number", False, "auth ID = <associated number>#<code>"),
    _i("min_auth_code_length", 4, "minimum digits of the authorization code", 1),
    _i("max_auth_code_length", 4, "maximum digits of the authorization code", 1),
    *LOGIN,
    _i("lockout_failures", 5, "wrong codes per caller account (across calls) before lockout", 1),
    _i("lockout_seconds", 300, "how long a locked-out caller account stays locked", 1),
    *PROMPTS, *MOH,
]

PREPAID = [
    _b("ani_authentication", False, "authenticate by the caller's number (ANI), no PIN asked"),
    _b("use_ani_and_auth_code", False, "bill <associated number>#<auth code> of the ANI's account"),
    _i("min_auth_code_length", 4, "minimum digits of the auth code", 1),
    _i("max_auth_code_length", 4, "maximum digits of the auth code", 1),
    _b("manual_authentication", True, "allow PIN authentication when ANI fails or is off"),
    *LOGIN,
    _b("auto_registration", False, "offer to register the ANI after PIN authentication"),
    _b("register_without_confirmation", False, "register the ANI without asking"),
    _i("lockout_failures", 10,
       "wrong card numbers or codes from one caller number (across calls) before lockout", 1),
    _i("lockout_seconds", 3600, "how long a locked-out caller number stays locked", 1),
    _c("check_service_password", "none", ("none", "always", "only_pin", "only_ani"),
       "when to ask for the account's service password"),
    _i("min_password_length", 4, "minimum length of the service password", 1),
    _i("max_password_length", 4, "maximum length of the service password", 1),
    *ACCOUNTING,
    _b("dynamic_reauthorization", False, "reauthorize during the call (concurrent sessions)"),
    Option("grouping_access_code_prefix", "",
           "access code shared by all access numbers (e.g. LOCAL)"),
    _c("incoming_session_accounting", "no_charges",
       ("no_charges", "all_session_time", "outgoing_calls_only",
        "all_session_time_unless_all_fail"),
       "how the call to the access number is charged"),
    _c("rate_by", "cli", ("cli", "cld"), "number used to rate the incoming leg"),
    Option("incoming_access_code_prefix", "", "access code for the incoming leg (e.g. IN)"),
    _b("use_fixed_access_code_for_first_calls", False,
       "FIRSTCALL instead of FIRST#<access number>"),
    _b("use_special_access_code_for_first_calls", False, "rate the first call by a special entry"),
    *ANI_RULE,
    _rule("pin_translation_rule", "sed rule applied to the collected PIN"),
    *CARD, *BALANCE_SAY, *MOH,
    _b("play_welcome_message", True, "play the welcome message on answer"),
    *WARNINGS, *PROMPTS, *LANGUAGE_MENU, *TIME_SAY,
    _b("check_associated_number", False, "dial the account's associated number directly"),
    _rule("destination_translation_rule",
          "sed rule turning the number dialed into E.164 (s/^00// or s/^0/44/)"),
    _i("max_dial_attempts", 3, "dial attempts within one session", 1),
    _b("self_care_menu", False, "enable the # self-care menu"),
    _b("announce_self_care_menu", False, "tell the caller # opens the self-care menu"),
    _b("allow_ani_deregistration", False, "let callers unlink their ANI in self-care"),
    _b("account_top_up", True, "allow voucher top-up in self-care"),
    *VOUCHER,
    _b("announce_balance", False, "announce the balance before asking for the number"),
]

CALLBACK = [
    _c("authenticate_by", "ani", ("ani", "dnis", "none"),
       "user name of the authentication request"),
    _b("auto_registration", False, "register the caller's number after PIN validation"),
    *LOGIN, *ACCOUNTING,
    _i("expected_connect_time", 20, "seconds of leg B setup the balance must cover"),
    Option("internal_account", "",
           "account authorizing the initial callback (default: access number)"),
    _b("send_authorization", False, "authorize together with authentication"),
    _i("min_sufficient_time", 0, "minimum seconds of leg A the caller must afford"),
    _b("strict_authorization", False, "drop leg A when leg B cannot be paid"),
    Option("leg_a_cld_prefix", "", "access code prefix for leg A (LEG_A -> LEG_A.<dnis>)"),
    Option("leg_b_cld_prefix", "", "access code prefix for leg B (LEG_B -> LEG_B.<dnis>)"),
    _b("special_charge_if_leg_b_fails", False, "rate failed leg B calls by CALLBACK_FAIL"),
    _rule("ani_translation_rule", "sed rule turning the ANI into an account ID (s/^0/cb44/)"),
    _rule("destination_translation_rule", "sed rule turning the ANI into the number called back"),
    *BALANCE_SAY, *MOH,
    _b("play_welcome_message", True, "play the welcome message on answer"),
    *WARNINGS, *PROMPTS, *TIME_SAY,
    Option("template_account", "", "account whose settings auto-registered accounts copy"),
    _i("max_dial_attempts", 3, "dial attempts within one session", 1),
    *CARD, *VOUCHER,
    _i("wait_time", 5, "seconds before calling the user back"),
]

VOUCHER_TOPUP = [*LOGIN, *SIP_INFO, *ANI_RULE, *CARD, *VOUCHER, *BALANCE_SAY, *PROMPTS]

BALANCE_TRANSFER = [
    *LOGIN, *SIP_INFO, *ANI_RULE, *CARD, *VOUCHER, *BALANCE_SAY, *PROMPTS,
    _b("allow_transfer_from_debit_accounts", True, "top up from another (debit) prepaid card"),
    Option("minimum_sum", "0", "minimum amount transferred", kind="money"),
]

BALANCE_INFO = [
    *SIP_INFO, *ANI_RULE, *BALANCE_SAY,
    _b("use_early_media", False, "announce the balance in early media (caller not charged)"),
    *PROMPTS,
]

# not in the seed's list; second-number-service.txt needs voicemail access and dial-out
VOICEMAIL = [
    *LOGIN,
    _i("min_password_length", 4, "minimum length of the mailbox password", 1),
    _i("max_password_length", 4, "maximum length of the mailbox password", 1),
    _b("allow_outgoing_calls", True, "let the owner dial out from voicemail (CLI = the account)"),
    _i("max_dial_attempts", 3, "dial attempts within one session", 1),
    _i("max_message_seconds", 120, "longest message a caller may leave", 1),
    *PROMPTS,
]

SCHEMA: dict[str, dict[str, Option]] = {
    kind: {opt.name: opt for opt in options}
    for kind, options in (("pass_through", PASS_THROUGH), ("prepaid", PREPAID),
                          ("callback", CALLBACK), ("voucher_topup", VOUCHER_TOPUP),
                          ("balance_info", BALANCE_INFO), ("balance_transfer", BALANCE_TRANSFER),
                          ("voicemail", VOICEMAIL))
}
# (minimum, maximum) pairs that must stay ordered
PAIRS = [("min_auth_code_length", "max_auth_code_length"),
         ("min_card_length", "max_card_length"),
         ("min_voucher_length", "max_voucher_length"),
         ("min_password_length", "max_password_length")]


def app_type(value: object) -> str:
    """A known application type."""
    if value not in TYPES:
        raise BadInput(f"voice application type {value!r}: one of {', '.join(TYPES)}")
    return str(value)


def defaults(kind: str) -> dict[str, Any]:
    """Every option of an application type with its default."""
    return {name: _copy(opt.default) for name, opt in SCHEMA[app_type(kind)].items()}


def complete(kind: str, given: dict[str, Any],
             base: dict[str, Any] | None = None) -> dict[str, Any]:
    """base (or defaults) updated with given, every value checked; the full settings map."""
    options = SCHEMA[app_type(kind)]
    result = defaults(kind)
    result.update({k: v for k, v in (base or {}).items() if k in options})
    for name, value in given.items():
        if name not in options:
            raise BadInput(f"voice application type {kind} has no setting {name!r}")
        result[name] = check(options[name], value)
    for low, high in PAIRS:
        if low in result and result[low] > result[high]:
            raise BadInput(f"setting {low} ({result[low]}) is greater than {high} ({result[high]})")
    return result


def check(opt: Option, value: Any) -> Any:
    """The value if it has the option's type (and choice, minimum), else BadInput."""
    wrong = BadInput(f"setting {opt.name}: {value!r} is not a {opt.type_name}")
    default = opt.default
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise wrong
    elif isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong
        if value < opt.minimum:
            raise BadInput(f"setting {opt.name}: {value} is less than {opt.minimum}")
    elif isinstance(default, list):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise wrong
    elif not isinstance(value, str):
        raise wrong
    elif opt.choices and value not in opt.choices:
        raise wrong
    elif opt.kind == "rule":
        validate.translation_rule(value)
    elif opt.kind == "money":
        value = str(validate.money(opt.name, value))
    return value


def parse(kind: str, assignment: str) -> tuple[str, Any]:
    """'name=value' from the command line, the value typed by the option's schema."""
    name, eq, raw = assignment.partition("=")
    name = name.strip().replace("-", "_")
    options = SCHEMA[app_type(kind)]
    if not eq:
        raise BadInput(f"setting {assignment!r}: name=value expected")
    if name not in options:
        raise BadInput(f"voice application type {kind} has no setting {name!r}")
    return name, _from_text(options[name], raw.strip())


def _from_text(opt: Option, raw: str) -> Any:
    """Command-line text to the option's type; check() then validates it."""
    default = opt.default
    if isinstance(default, bool):
        words = {"true": True, "yes": True, "on": True, "1": True,
                 "false": False, "no": False, "off": False, "0": False}
        if raw.lower() not in words:
            raise BadInput(f"setting {opt.name}: {raw!r} is not a boolean (true/false)")
        return words[raw.lower()]
    if isinstance(default, int):
        try:
            return int(raw)
        except ValueError:
            raise BadInput(f"setting {opt.name}: {raw!r} is not a whole number") from None
    if isinstance(default, list):
        return [part.strip() for part in raw.split(",") if part.strip()]
    return raw


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value
