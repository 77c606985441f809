"""Voice prompts: synthesized per language with espeak-ng + sox, overridable per brand.

`python -m ivr.prompts build DIR [--lang en --lang es ...]` writes DIR/<lang>/<name>.wav
(8 kHz, mono, 16-bit PCM, what PCMU/PCMA calls carry). An operator's brand folder
<brand_dir>/<brand>/<lang>/<name>.wav wins over the synthesized file of the same name.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

DEFAULT_LANGUAGE = "en"

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "enter_code": "Please enter your authorization code.",
        "invalid_code": "The code you entered is not valid.",
        "goodbye": "Goodbye.",
        "locked_out": "Too many invalid codes were entered. Please try again later. Goodbye.",
        "insufficient_funds": "You have insufficient funds for this call.",
        "forbidden": "This call is not allowed.",
        "not_found": "The number you dialed does not exist.",
        "busy": "The number you dialed is busy. Please try again later.",
        "unavailable": "The number you dialed cannot be reached now. Please try again later.",
        "please_wait": "Please wait while your call is connected.",
    },
    "es": {
        "enter_code": "Por favor, marque su código de autorización.",
        "invalid_code": "El código marcado no es válido.",
        "goodbye": "Adiós.",
        "locked_out": "Demasiados códigos incorrectos. Inténtelo más tarde. Adiós.",
        "insufficient_funds": "No tiene saldo suficiente para esta llamada.",
        "forbidden": "Esta llamada no está permitida.",
        "not_found": "El número marcado no existe.",
        "busy": "El número marcado está ocupado. Inténtelo más tarde.",
        "unavailable": "El número marcado no está disponible. Inténtelo más tarde.",
        "please_wait": "Espere mientras conectamos su llamada.",
    },
    "fr": {
        "enter_code": "Veuillez composer votre code d'autorisation.",
        "invalid_code": "Le code composé n'est pas valide.",
        "goodbye": "Au revoir.",
        "locked_out": "Trop de codes invalides. Veuillez réessayer plus tard. Au revoir.",
        "insufficient_funds": "Votre crédit est insuffisant pour cet appel.",
        "forbidden": "Cet appel n'est pas autorisé.",
        "not_found": "Le numéro composé n'existe pas.",
        "busy": "Le numéro composé est occupé. Veuillez réessayer plus tard.",
        "unavailable": "Le numéro composé est injoignable. Veuillez réessayer plus tard.",
        "please_wait": "Veuillez patienter, nous connectons votre appel.",
    },
    "de": {
        "enter_code": "Bitte geben Sie Ihren Autorisierungscode ein.",
        "invalid_code": "Der eingegebene Code ist ungültig.",
        "goodbye": "Auf Wiederhören.",
        "locked_out": "Zu viele ungültige Codes. Bitte versuchen Sie es später. Auf Wiederhören.",
        "insufficient_funds": "Ihr Guthaben reicht für diesen Anruf nicht aus.",
        "forbidden": "Dieser Anruf ist nicht erlaubt.",
        "not_found": "Die gewählte Nummer existiert nicht.",
        "busy": "Die gewählte Nummer ist besetzt. Bitte versuchen Sie es später.",
        "unavailable": "Die gewählte Nummer ist nicht erreichbar. Bitte versuchen Sie es später.",
        "please_wait": "Bitte warten Sie, Ihr Anruf wird verbunden.",
    },
}
NAMES = tuple(TEXTS[DEFAULT_LANGUAGE])


def synthesize(text: str, lang: str, out: Path) -> None:
    """One prompt: espeak-ng speech resampled by sox to 8 kHz mono 16-bit."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        subprocess.run(["espeak-ng", "-v", lang, "-s", "150", "-w", str(raw), text],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        part = Path(tmp) / "part.wav"  # private, then renamed: builders may run side by side
        subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16",
                        "-e", "signed-integer", str(part), "pad", "0.1", "0.3"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        tmp_out = out.parent / f".{out.name}.{os.getpid()}"
        shutil.copyfile(part, tmp_out)
        os.replace(tmp_out, out)


def build(directory: Path, languages: list[str] | None = None, force: bool = False) -> list[Path]:
    """Synthesize every missing prompt of each language; returns the files written."""
    written = []
    for lang in languages or list(TEXTS):
        for name, text in TEXTS.get(lang, TEXTS[DEFAULT_LANGUAGE]).items():
            out = directory / lang / f"{name}.wav"
            if force or not out.exists():
                synthesize(text, lang, out)
                written.append(out)
    return written


def resolve(prompt_dir: Path, name: str, lang: str = DEFAULT_LANGUAGE,
            brand_dir: Path | None = None, brand: str = "") -> Path:
    """The file to play: brand folder first, then the language, then the default language."""
    candidates = []
    if brand_dir is not None and brand and "/" not in brand and brand not in (".", ".."):
        candidates.append(brand_dir / brand / lang / f"{name}.wav")
    candidates += [prompt_dir / lang / f"{name}.wav", prompt_dir / DEFAULT_LANGUAGE / f"{name}.wav"]
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(f"no prompt {name} for language {lang} under {prompt_dir}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ivr.prompts")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="synthesize prompts into DIR/<lang>/<name>.wav")
    b.add_argument("dir", type=Path)
    b.add_argument("--lang", action="append",
                   help=f"language (repeatable; default: {', '.join(TEXTS)})")
    b.add_argument("--force", action="store_true", help="rebuild existing files too")
    args = parser.parse_args(argv)
    written = build(args.dir, args.lang, args.force)
    print(f"{len(written)} prompts written under {args.dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
