"""Voice prompts: synthesized per language with espeak-ng + sox, overridable per brand.

`python -m ivr.prompts build DIR [--lang en --lang es ...]` writes DIR/<lang>/<name>.wav
(8 kHz, mono, 16-bit PCM, what PCMU/PCMA calls carry). An operator's brand folder
<brand_dir>/<brand>/<lang>/<name>.wav wins over the synthesized file of the same name.
"""
from __future__ import annotations

import argparse
import array
import math
import os
import shutil
import subprocess
import sys
import tempfile
import wave
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ivr import vocabulary

DEFAULT_LANGUAGE = "en"

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "welcome": "Welcome.",
        "for_language": "For English, press",
        "select_language_brief": ("Please select your language, or press one to continue in "
            "English."),
        "enter_card": "Please enter your card number.",
        "invalid_card": "The card number you entered is not valid.",
        "enter_password": "Please enter your password.",
        "invalid_password": "The password you entered is not valid.",
        "not_authorized": "Your phone number is not registered for this service.",
        "card_blocked": "This card is blocked.",
        "card_expired": "This card has expired.",
        "register_ani": ("To use this phone without your card number next time, press "
            "one. To skip, press two."),
        "ani_registered": "Your phone number is now registered.",
        "ani_deregistered": "Your phone number is no longer registered.",
        "your_balance_is": "Your balance is",
        "available_funds_are": "Your available funds are",
        "credit_limit_is": "Your credit limit is",
        "confirm_with_pound": "Then press the pound key.",
        "enter_destination": "Please enter the number you wish to call, followed by the pound key.",
        "self_care_hint": "For more options, press the pound key.",
        "sc_another_card": "To use another card, press one.",
        "sc_voucher": "To top up with a voucher, press two.",
        "sc_deregister": "To stop using this phone without a card number, press three.",
        "sc_balance": "To hear your balance, press four.",
        "sc_back": "To return, press star.",
        "voucher_unavailable": "Voucher top-up is not available.",
        "enter_voucher": "Please enter your voucher number.",
        "invalid_voucher": "The voucher number you entered is not valid.",
        "voucher_accepted": "Your voucher has been accepted.",
        "enter_donor_card": "Please enter the number of the card to take the balance from.",
        "balance_transferred": "The balance has been transferred.",
        "transfer_refused": "The balance of that card cannot be transferred.",
        "transfer_unavailable": "Balance transfer is not available.",
        "you_have": "You have",
        "for_this_call": "for this call.",
        "call_ends_in": "Your call will end in",
        "enter_code": "Please enter your authorization code.",
        "invalid_code": "The code you entered is not valid.",
        "goodbye": "Goodbye.",
        "locked_out": "Too many invalid codes were entered. Please try again later. Goodbye.",
        "insufficient_funds": "You have insufficient funds for this call.",
        "forbidden": "This call is not allowed.",
        "not_found": "The number you dialed does not exist.",
        "no_permission": "You have no permission to place this call.",
        "cannot_bill": "This call cannot be billed.",
        "max_calls_reached": "The number of simultaneous calls has been reached.",
        "max_daily_usage_reached": "The daily usage limit has been reached.",
        "busy": "The number you dialed is busy. Please try again later.",
        "unavailable": "The number you dialed cannot be reached now. Please try again later.",
        "please_wait": "Please wait while your call is connected.",
        "vm_not_available": ("The person you are calling is not available. Please leave a "
            "message after the tone, and press the pound key when you are "
            "done."),
        "vm_mailbox_full": "The mailbox is full and cannot take new messages.",
        "vm_message_saved": "Your message has been saved.",
        "vm_enter_mailbox": "Please enter your mailbox number, followed by the pound key.",
        "vm_you_have": "You have",
        "vm_new_message": "new message",
        "vm_new_messages": "new messages",
        "vm_and": "and",
        "vm_saved_message": "saved message.",
        "vm_saved_messages": "saved messages.",
        "vm_main_menu": ("To listen to your new messages, press one. For your saved "
            "messages, press two. To record your greeting, press three. To "
            "change your password, press four. To make a call, press five. "
            "To end, press star."),
        "vm_main_menu_no_calls": ("To listen to your new messages, press one. For your saved "
            "messages, press two. To record your greeting, press three. To "
            "change your password, press four. To end, press star."),
        "vm_no_messages": "There are no messages.",
        "vm_no_more_messages": "There are no more messages.",
        "vm_message": "Message",
        "vm_from": "from",
        "vm_unknown_caller": "an unknown caller",
        "vm_received": "received",
        "vm_ago": "ago.",
        "vm_message_menu": ("To hear it again, press one. To save it, press two. To delete "
            "it, press three. To skip it, press four. For the next message, "
            "press the pound key. For the main menu, press star."),
        "vm_deleted": "Message deleted.",
        "vm_saved": "Message saved.",
        "vm_record_greeting": "Record your greeting after the tone, then press the pound key.",
        "vm_greeting_saved": "Your greeting has been saved.",
        "vm_enter_new_password": ("Please enter your new password, at least four digits, followed "
            "by the pound key."),
        "vm_password_changed": "Your password has been changed.",
    },
    "es": {
        "welcome": "Bienvenido.",
        "for_language": "Para español, marque",
        "select_language_brief": "Seleccione su idioma, o marque uno para continuar en español.",
        "enter_card": "Por favor, marque el número de su tarjeta.",
        "invalid_card": "El número de tarjeta no es válido.",
        "enter_password": "Por favor, marque su contraseña.",
        "invalid_password": "La contraseña no es válida.",
        "not_authorized": "Su número no está registrado para este servicio.",
        "card_blocked": "Esta tarjeta está bloqueada.",
        "card_expired": "Esta tarjeta ha caducado.",
        "register_ani": ("Para usar este teléfono sin número de tarjeta, marque uno. "
            "Para continuar, marque dos."),
        "ani_registered": "Su número de teléfono ha sido registrado.",
        "ani_deregistered": "Su número de teléfono ya no está registrado.",
        "your_balance_is": "Su saldo es",
        "available_funds_are": "Su saldo disponible es",
        "credit_limit_is": "Su límite de crédito es",
        "confirm_with_pound": "Luego pulse la tecla numeral.",
        "enter_destination": "Marque el número al que desea llamar, seguido de la tecla numeral.",
        "self_care_hint": "Para más opciones, marque la tecla numeral.",
        "sc_another_card": "Para usar otra tarjeta, marque uno.",
        "sc_voucher": "Para recargar con un cupón, marque dos.",
        "sc_deregister": "Para dejar de usar este teléfono sin tarjeta, marque tres.",
        "sc_balance": "Para escuchar su saldo, marque cuatro.",
        "sc_back": "Para volver, marque asterisco.",
        "voucher_unavailable": "La recarga con cupón no está disponible.",
        "enter_voucher": "Por favor, marque el número de su cupón.",
        "invalid_voucher": "El número de cupón no es válido.",
        "voucher_accepted": "Su cupón ha sido aceptado.",
        "enter_donor_card": "Marque el número de la tarjeta de la que desea pasar el saldo.",
        "balance_transferred": "El saldo ha sido transferido.",
        "transfer_refused": "El saldo de esa tarjeta no se puede transferir.",
        "transfer_unavailable": "La transferencia de saldo no está disponible.",
        "you_have": "Tiene",
        "for_this_call": "para esta llamada.",
        "call_ends_in": "Su llamada terminará en",
        "enter_code": "Por favor, marque su código de autorización.",
        "invalid_code": "El código marcado no es válido.",
        "goodbye": "Adiós.",
        "locked_out": "Demasiados códigos incorrectos. Inténtelo más tarde. Adiós.",
        "insufficient_funds": "No tiene saldo suficiente para esta llamada.",
        "forbidden": "Esta llamada no está permitida.",
        "not_found": "El número marcado no existe.",
        "no_permission": "No tiene permiso para realizar esta llamada.",
        "cannot_bill": "Esta llamada no se puede facturar.",
        "max_calls_reached": "Se ha alcanzado el número de llamadas simultáneas.",
        "max_daily_usage_reached": "Se ha alcanzado el límite de consumo diario.",
        "busy": "El número marcado está ocupado. Inténtelo más tarde.",
        "unavailable": "El número marcado no está disponible. Inténtelo más tarde.",
        "please_wait": "Espere mientras conectamos su llamada.",
        "vm_not_available": ("La persona a la que llama no está disponible. Deje su mensaje "
            "después del tono y marque la tecla numeral al terminar."),
        "vm_mailbox_full": "El buzón está lleno y no admite mensajes nuevos.",
        "vm_message_saved": "Su mensaje ha sido guardado.",
        "vm_enter_mailbox": "Marque el número de su buzón, seguido de la tecla numeral.",
        "vm_you_have": "Tiene",
        "vm_new_message": "mensaje nuevo",
        "vm_new_messages": "mensajes nuevos",
        "vm_and": "y",
        "vm_saved_message": "mensaje guardado.",
        "vm_saved_messages": "mensajes guardados.",
        "vm_main_menu": ("Para escuchar sus mensajes nuevos, marque uno. Para los "
            "mensajes guardados, marque dos. Para grabar su saludo, marque "
            "tres. Para cambiar su contraseña, marque cuatro. Para hacer "
            "una llamada, marque cinco. Para terminar, marque asterisco."),
        "vm_main_menu_no_calls": ("Para escuchar sus mensajes nuevos, marque uno. Para los "
            "mensajes guardados, marque dos. Para grabar su saludo, marque "
            "tres. Para cambiar su contraseña, marque cuatro. Para "
            "terminar, marque asterisco."),
        "vm_no_messages": "No hay mensajes.",
        "vm_no_more_messages": "No hay más mensajes.",
        "vm_message": "Mensaje",
        "vm_from": "de",
        "vm_unknown_caller": "un número desconocido",
        "vm_received": "recibido hace",
        "vm_ago": "atrás.",
        "vm_message_menu": ("Para escucharlo de nuevo, marque uno. Para guardarlo, marque "
            "dos. Para borrarlo, marque tres. Para omitirlo, marque cuatro. "
            "Para el siguiente mensaje, marque la tecla numeral. Para el "
            "menú principal, marque asterisco."),
        "vm_deleted": "Mensaje borrado.",
        "vm_saved": "Mensaje guardado.",
        "vm_record_greeting": "Grabe su saludo después del tono y marque la tecla numeral.",
        "vm_greeting_saved": "Su saludo ha sido guardado.",
        "vm_enter_new_password": ("Marque su nueva contraseña, de al menos cuatro dígitos, "
            "seguida de la tecla numeral."),
        "vm_password_changed": "Su contraseña ha sido cambiada.",
    },
    "fr": {
        "welcome": "Bienvenue.",
        "for_language": "Pour le français, tapez",
        "select_language_brief": "Choisissez votre langue, ou tapez un pour continuer en français.",
        "enter_card": "Veuillez composer votre numéro de carte.",
        "invalid_card": "Le numéro de carte n'est pas valide.",
        "enter_password": "Veuillez composer votre mot de passe.",
        "invalid_password": "Le mot de passe n'est pas valide.",
        "not_authorized": "Votre numéro n'est pas enregistré pour ce service.",
        "card_blocked": "Cette carte est bloquée.",
        "card_expired": "Cette carte a expiré.",
        "register_ani": ("Pour utiliser ce téléphone sans numéro de carte, tapez un. "
            "Pour continuer, tapez deux."),
        "ani_registered": "Votre numéro est maintenant enregistré.",
        "ani_deregistered": "Votre numéro n'est plus enregistré.",
        "your_balance_is": "Votre solde est de",
        "available_funds_are": "Votre crédit disponible est de",
        "credit_limit_is": "Votre limite de crédit est de",
        "enter_destination": ("Composez le numéro que vous souhaitez appeler, suivi de la "
            "touche dièse."),
        "confirm_with_pound": "Puis tapez dièse.",
        "self_care_hint": "Pour plus d'options, tapez dièse.",
        "sc_another_card": "Pour utiliser une autre carte, tapez un.",
        "sc_voucher": "Pour recharger avec un coupon, tapez deux.",
        "sc_deregister": "Pour ne plus utiliser ce téléphone sans carte, tapez trois.",
        "sc_balance": "Pour écouter votre solde, tapez quatre.",
        "sc_back": "Pour revenir, tapez étoile.",
        "voucher_unavailable": "La recharge par coupon n'est pas disponible.",
        "enter_voucher": "Veuillez composer le numéro de votre coupon.",
        "invalid_voucher": "Le numéro de coupon n'est pas valide.",
        "voucher_accepted": "Votre coupon a été accepté.",
        "enter_donor_card": "Composez le numéro de la carte dont vous voulez reprendre le solde.",
        "balance_transferred": "Le solde a été transféré.",
        "transfer_refused": "Le solde de cette carte ne peut pas être transféré.",
        "transfer_unavailable": "Le transfert de solde n'est pas disponible.",
        "you_have": "Vous disposez de",
        "for_this_call": "pour cet appel.",
        "call_ends_in": "Votre appel se terminera dans",
        "enter_code": "Veuillez composer votre code d'autorisation.",
        "invalid_code": "Le code composé n'est pas valide.",
        "goodbye": "Au revoir.",
        "locked_out": "Trop de codes invalides. Veuillez réessayer plus tard. Au revoir.",
        "insufficient_funds": "Votre crédit est insuffisant pour cet appel.",
        "forbidden": "Cet appel n'est pas autorisé.",
        "not_found": "Le numéro composé n'existe pas.",
        "no_permission": "Vous n'êtes pas autorisé à passer cet appel.",
        "cannot_bill": "Cet appel ne peut pas être facturé.",
        "max_calls_reached": "Le nombre d'appels simultanés est atteint.",
        "max_daily_usage_reached": "La limite de consommation journalière est atteinte.",
        "busy": "Le numéro composé est occupé. Veuillez réessayer plus tard.",
        "unavailable": "Le numéro composé est injoignable. Veuillez réessayer plus tard.",
        "please_wait": "Veuillez patienter, nous connectons votre appel.",
        "vm_not_available": ("Votre correspondant n'est pas disponible. Laissez un message "
            "après le bip, puis appuyez sur la touche dièse."),
        "vm_mailbox_full": "La messagerie est pleine et ne peut plus recevoir de messages.",
        "vm_message_saved": "Votre message a été enregistré.",
        "vm_enter_mailbox": ("Veuillez composer le numéro de votre messagerie, suivi de la "
            "touche dièse."),
        "vm_you_have": "Vous avez",
        "vm_new_message": "nouveau message",
        "vm_new_messages": "nouveaux messages",
        "vm_and": "et",
        "vm_saved_message": "message sauvegardé.",
        "vm_saved_messages": "messages sauvegardés.",
        "vm_main_menu": ("Pour écouter vos nouveaux messages, appuyez sur un. Pour vos "
            "messages sauvegardés, appuyez sur deux. Pour enregistrer votre "
            "annonce, appuyez sur trois. Pour changer votre mot de passe, "
            "appuyez sur quatre. Pour passer un appel, appuyez sur cinq. "
            "Pour terminer, appuyez sur étoile."),
        "vm_main_menu_no_calls": ("Pour écouter vos nouveaux messages, appuyez sur un. Pour vos "
            "messages sauvegardés, appuyez sur deux. Pour enregistrer votre "
            "annonce, appuyez sur trois. Pour changer votre mot de passe, "
            "appuyez sur quatre. Pour terminer, appuyez sur étoile."),
        "vm_no_messages": "Il n'y a aucun message.",
        "vm_no_more_messages": "Il n'y a plus de messages.",
        "vm_message": "Message",
        "vm_from": "de",
        "vm_unknown_caller": "un numéro inconnu",
        "vm_received": "reçu il y a",
        "vm_ago": "auparavant.",
        "vm_message_menu": ("Pour le réécouter, appuyez sur un. Pour le sauvegarder, "
            "appuyez sur deux. Pour le supprimer, appuyez sur trois. Pour "
            "le passer, appuyez sur quatre. Pour le message suivant, "
            "appuyez sur dièse. Pour le menu principal, appuyez sur étoile."),
        "vm_deleted": "Message supprimé.",
        "vm_saved": "Message sauvegardé.",
        "vm_record_greeting": "Enregistrez votre annonce après le bip, puis appuyez sur dièse.",
        "vm_greeting_saved": "Votre annonce a été enregistrée.",
        "vm_enter_new_password": ("Composez votre nouveau mot de passe, d'au moins quatre "
            "chiffres, suivi de la touche dièse."),
        "vm_password_changed": "Votre mot de passe a été changé.",
    },
    "de": {
        "welcome": "Willkommen.",
        "for_language": "Für Deutsch drücken Sie die",
        "select_language_brief": ("Bitte wählen Sie Ihre Sprache, oder drücken Sie die eins, "
            "um auf Deutsch fortzufahren."),
        "enter_card": "Bitte geben Sie Ihre Kartennummer ein.",
        "invalid_card": "Die eingegebene Kartennummer ist ungültig.",
        "enter_password": "Bitte geben Sie Ihr Passwort ein.",
        "invalid_password": "Das eingegebene Passwort ist ungültig.",
        "not_authorized": "Ihre Rufnummer ist für diesen Dienst nicht registriert.",
        "card_blocked": "Diese Karte ist gesperrt.",
        "card_expired": "Diese Karte ist abgelaufen.",
        "register_ani": ("Um dieses Telefon künftig ohne Kartennummer zu nutzen, "
            "drücken Sie die eins. Zum Überspringen die zwei."),
        "ani_registered": "Ihre Rufnummer ist jetzt registriert.",
        "ani_deregistered": "Ihre Rufnummer ist nicht mehr registriert.",
        "your_balance_is": "Ihr Guthaben beträgt",
        "available_funds_are": "Ihr verfügbares Guthaben beträgt",
        "credit_limit_is": "Ihr Kreditlimit beträgt",
        "enter_destination": ("Bitte wählen Sie die gewünschte Rufnummer, gefolgt von der "
            "Rautetaste."),
        "confirm_with_pound": "Drücken Sie dann die Rautetaste.",
        "self_care_hint": "Für weitere Optionen drücken Sie die Rautetaste.",
        "sc_another_card": "Für eine andere Karte drücken Sie die eins.",
        "sc_voucher": "Zum Aufladen mit einem Gutschein drücken Sie die zwei.",
        "sc_deregister": "Um dieses Telefon nicht mehr ohne Karte zu nutzen, drücken Sie die drei.",
        "sc_balance": "Für Ihr Guthaben drücken Sie die vier.",
        "sc_back": "Zurück mit der Sterntaste.",
        "voucher_unavailable": "Das Aufladen mit Gutscheinen ist nicht verfügbar.",
        "enter_voucher": "Bitte geben Sie Ihre Gutscheinnummer ein.",
        "invalid_voucher": "Die eingegebene Gutscheinnummer ist ungültig.",
        "voucher_accepted": "Ihr Gutschein wurde angenommen.",
        "enter_donor_card": ("Bitte geben Sie die Nummer der Karte ein, deren Guthaben Sie "
            "übernehmen."),
        "balance_transferred": "Das Guthaben wurde übertragen.",
        "transfer_refused": "Das Guthaben dieser Karte kann nicht übertragen werden.",
        "transfer_unavailable": "Die Guthabenübertragung ist nicht verfügbar.",
        "you_have": "Sie haben",
        "for_this_call": "für diesen Anruf.",
        "call_ends_in": "Ihr Anruf endet in",
        "enter_code": "Bitte geben Sie Ihren Autorisierungscode ein.",
        "invalid_code": "Der eingegebene Code ist ungültig.",
        "goodbye": "Auf Wiederhören.",
        "locked_out": "Zu viele ungültige Codes. Bitte versuchen Sie es später. Auf Wiederhören.",
        "insufficient_funds": "Ihr Guthaben reicht für diesen Anruf nicht aus.",
        "forbidden": "Dieser Anruf ist nicht erlaubt.",
        "not_found": "Die gewählte Nummer existiert nicht.",
        "no_permission": "Sie sind nicht berechtigt, diesen Anruf zu tätigen.",
        "cannot_bill": "Dieser Anruf kann nicht abgerechnet werden.",
        "max_calls_reached": "Die Zahl gleichzeitiger Anrufe ist erreicht.",
        "max_daily_usage_reached": "Das tägliche Verbrauchslimit ist erreicht.",
        "busy": "Die gewählte Nummer ist besetzt. Bitte versuchen Sie es später.",
        "unavailable": "Die gewählte Nummer ist nicht erreichbar. Bitte versuchen Sie es später.",
        "please_wait": "Bitte warten Sie, Ihr Anruf wird verbunden.",
        "vm_not_available": ("Der Teilnehmer ist nicht erreichbar. Bitte hinterlassen Sie "
            "nach dem Signalton eine Nachricht und drücken Sie danach die "
            "Raute-Taste."),
        "vm_mailbox_full": "Die Mailbox ist voll und kann keine neuen Nachrichten aufnehmen.",
        "vm_message_saved": "Ihre Nachricht wurde gespeichert.",
        "vm_enter_mailbox": "Bitte geben Sie Ihre Mailbox-Nummer ein, gefolgt von der Raute-Taste.",
        "vm_you_have": "Sie haben",
        "vm_new_message": "neue Nachricht",
        "vm_new_messages": "neue Nachrichten",
        "vm_and": "und",
        "vm_saved_message": "gespeicherte Nachricht.",
        "vm_saved_messages": "gespeicherte Nachrichten.",
        "vm_main_menu": ("Um Ihre neuen Nachrichten abzuhören, drücken Sie die Eins. Für "
            "gespeicherte Nachrichten die Zwei. Um Ihre Ansage aufzunehmen, "
            "die Drei. Um Ihr Kennwort zu ändern, die Vier. Um anzurufen, "
            "die Fünf. Zum Beenden die Stern-Taste."),
        "vm_main_menu_no_calls": ("Um Ihre neuen Nachrichten abzuhören, drücken Sie die Eins. Für "
            "gespeicherte Nachrichten die Zwei. Um Ihre Ansage aufzunehmen, "
            "die Drei. Um Ihr Kennwort zu ändern, die Vier. Zum Beenden die "
            "Stern-Taste."),
        "vm_no_messages": "Es sind keine Nachrichten vorhanden.",
        "vm_no_more_messages": "Es sind keine weiteren Nachrichten vorhanden.",
        "vm_message": "Nachricht",
        "vm_from": "von",
        "vm_unknown_caller": "einer unbekannten Nummer",
        "vm_received": "empfangen vor",
        "vm_ago": "zuvor.",
        "vm_message_menu": ("Zum erneuten Abhören drücken Sie die Eins. Zum Speichern die "
            "Zwei. Zum Löschen die Drei. Zum Überspringen die Vier. Für die "
            "nächste Nachricht die Raute-Taste. Für das Hauptmenü die "
            "Stern-Taste."),
        "vm_deleted": "Nachricht gelöscht.",
        "vm_saved": "Nachricht gespeichert.",
        "vm_record_greeting": ("Sprechen Sie Ihre Ansage nach dem Signalton und drücken Sie "
            "dann die Raute-Taste."),
        "vm_greeting_saved": "Ihre Ansage wurde gespeichert.",
        "vm_enter_new_password": ("Bitte geben Sie Ihr neues Kennwort mit mindestens vier Ziffern "
            "ein, gefolgt von der Raute-Taste."),
        "vm_password_changed": "Ihr Kennwort wurde geändert.",
    },
}
NAMES = tuple(TEXTS[DEFAULT_LANGUAGE])


# a sentence keeps a pause after it; a word of a spoken number or amount is trimmed to its
# sound, so "five minutes and forty-nine seconds" flows like speech
SENTENCE_PAD = ("pad", "0.1", "0.3")
WORD_TRIM = ("silence", "1", "0.02", "0.5%", "reverse", "silence", "1", "0.02", "0.5%",
             "reverse", "pad", "0.02", "0.06")


def synthesize(text: str, lang: str, out: Path, word: bool = False) -> None:
    """One prompt: espeak-ng speech resampled by sox to 8 kHz mono 16-bit."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        subprocess.run(["espeak-ng", "-v", lang, "-s", "150", "-w", str(raw), text],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        part = Path(tmp) / "part.wav"  # private, then renamed: builders may run side by side
        subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16",
                        "-e", "signed-integer", str(part), *(WORD_TRIM if word else SENTENCE_PAD)],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        tmp_out = out.parent / f".{out.name}.{os.getpid()}"
        shutil.copyfile(part, tmp_out)
        os.replace(tmp_out, out)


def build(directory: Path, languages: list[str] | None = None, force: bool = False) -> list[Path]:
    """Synthesize every missing prompt of each language; returns the files written."""
    # keyed by file: a language asked twice is built once
    jobs: dict[Path, tuple[str, str, bool]] = {}
    for lang in languages or list(TEXTS):
        texts = TEXTS.get(lang, TEXTS[DEFAULT_LANGUAGE])
        words = vocabulary.WORDS.get(lang, vocabulary.WORDS[DEFAULT_LANGUAGE])
        for name, text, word in [*((n, t, False) for n, t in texts.items()),
                                 *((n, t, True) for n, t in words.items())]:
            out = directory / lang / f"{name}.wav"
            if force or not out.exists():
                jobs[out] = (text, lang, word)
    # espeak-ng and sox run as subprocesses, so threads synthesize side by side
    with ThreadPoolExecutor(max_workers=os.cpu_count()) as pool:
        futures = [pool.submit(synthesize, text, lang, out, word)
                   for out, (text, lang, word) in jobs.items()]
        try:
            for future in futures:
                future.result()
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise
    return list(jobs) + build_tones(directory, force)


# tones, the same in every language: written once under the default language's folder
# (resolve() falls back to it), as (frequencies in Hz, seconds on, seconds off) repeated
TONES: dict[str, tuple[tuple[int, ...], float, float, int]] = {
    "beep": ((1000,), 0.4, 0.1, 1),
    "ringback": ((440, 480), 2.0, 4.0, 1),        # North American ringback cadence
    "busy_tone": ((480, 620), 0.5, 0.5, 4),
}
# the default music-on-hold class: a few bars of a plain tune
MOH_NOTES = (523, 659, 784, 659, 587, 698, 880, 698, 523, 659, 784, 1047)
RATE = 8000


def _pcm(frequencies: tuple[int, ...], seconds: float, level: float = 0.25) -> "array.array[int]":
    count = int(RATE * seconds)
    return array.array("h", (int(32767 * level / len(frequencies) * sum(
        math.sin(2 * math.pi * f * n / RATE) for f in frequencies)) for n in range(count)))


def _write_wav(out: Path, samples: "array.array[int]") -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.parent / f".{out.name}.{os.getpid()}"
    with wave.open(str(tmp_out), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(samples.tobytes())
    os.replace(tmp_out, out)


def build_tones(directory: Path, force: bool = False) -> list[Path]:
    """Beep, ringback, busy tone and the default music on hold (moh/default/music.wav)."""
    written = []
    for name, (freqs, on, off, times) in TONES.items():
        out = directory / DEFAULT_LANGUAGE / f"{name}.wav"
        if force or not out.exists():
            samples = array.array("h")
            for _ in range(times):
                samples += _pcm(freqs, on) + array.array("h", bytes(int(RATE * off) * 2))
            _write_wav(out, samples)
            written.append(out)
    out = directory / "moh" / "default" / "music.wav"
    if force or not out.exists():
        samples = array.array("h")
        for note in MOH_NOTES:
            samples += _pcm((note, note * 2), 0.35, 0.2)
        _write_wav(out, samples)
        written.append(out)
    return written


def music(prompt_dir: Path, moh_class: str) -> list[Path]:
    """The files of a music-on-hold class, <prompt_dir>/moh/<class>/*.wav in name order;
    the default class when the class has none (or its name is not a plain folder name)."""
    for name in (moh_class, "default"):
        if name and "/" not in name and name not in (".", ".."):
            files = sorted((prompt_dir / "moh" / name).glob("*.wav"))
            if files:
                return files
    return []


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
