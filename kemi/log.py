"""Log lines start with the Call-ID and the route step, as operators grep for them."""
import KSR

from kemi import message


def _call_id() -> str:
    # a dialog event carries the dialog's Call-ID; $ci there is the fake message's "123"
    return message.pv("$dlg(callid)") or message.pv("$ci", "?")


def info(step: str, text: str) -> None:
    KSR.info(f"[{_call_id()}] {step}: {text}\n")


def warn(step: str, text: str) -> None:
    KSR.warn(f"[{_call_id()}] {step}: {text}\n")


def error(step: str, text: str) -> None:
    KSR.err(f"[{_call_id()}] {step}: {text}\n")
