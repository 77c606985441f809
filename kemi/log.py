"""Log lines start with the Call-ID and the route step, as operators grep for them."""
import KSR


def info(step: str, text: str) -> None:
    KSR.info(f"[{KSR.pv.get('$ci')}] {step}: {text}\n")


def warn(step: str, text: str) -> None:
    KSR.warn(f"[{KSR.pv.get('$ci')}] {step}: {text}\n")


def error(step: str, text: str) -> None:
    KSR.err(f"[{KSR.pv.get('$ci')}] {step}: {text}\n")
