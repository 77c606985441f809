"""Brand prompts per access number (voice-application-settings.txt, "Brand prompts"): a
caller of a branded access number hears the brand's recording of a prompt; a caller of
the same application's other access number hears the default one."""
from __future__ import annotations

import shutil
import uuid

import pytest

from tests import tenants
from tests.calls import from_the_pstn, heard, ivr_log
from tests.e2e.test_prepaid_card import QUIET

pytestmark = pytest.mark.e2e


def test_a_branded_access_number_plays_its_brands_prompt(tg, sip, gateway, calls_end):
    card = tenants.prepaid_card(tg, settings=QUIET)
    brand, plain = f"brand{uuid.uuid4().hex[:6]}", card.access_number[:-3] + "001"
    prompts = tg.settings.var_path / "prompts"
    folder = prompts / "brands" / brand / "en"
    folder.mkdir(parents=True)
    # the brand's own recording of the card prompt (any audio will do: its path tells)
    shutil.copy(prompts / "en" / "welcome.wav", folder / "enter_card.wav")
    tg.cli("app", "update", card.app, "--access-number", f"{card.access_number}:{brand}",
           "--access-number", plain)

    branded = from_the_pstn(tg, gateway, card.access_number, "0211111111")
    heard(tg, sip, branded, "enter_card")
    assert f"[{branded.call_id}] PROMPT: playing enter_card ({folder}/enter_card.wav)" in (
        ivr_log(tg))
    branded.hangup_with()

    default = from_the_pstn(tg, gateway, plain, "0211111112")
    heard(tg, sip, default, "enter_card")
    played = [line for line in ivr_log(tg).splitlines()
              if f"[{default.call_id}] PROMPT: playing enter_card" in line]
    assert played and f"/brands/{brand}/" not in played[0]
    assert f"{prompts}/en/enter_card.wav" in played[0]
    default.hangup_with()
