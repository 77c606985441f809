"""Prompt synthesis (espeak-ng + sox) and brand-folder overrides."""
from __future__ import annotations

import wave

import pytest

from ivr import prompts, vocabulary

pytestmark = pytest.mark.unit


def test_build_writes_8khz_mono_16bit_prompts(tmp_path):
    written = prompts.build(tmp_path, ["en"])
    tones = set(prompts.TONES) | {"music"}
    assert {p.stem for p in written} == set(prompts.NAMES) | set(vocabulary.WORDS["en"]) | tones
    with wave.open(str(tmp_path / "en" / "enter_code.wav")) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        assert w.getnframes() > 8000  # more than a second of speech
    assert prompts.build(tmp_path, ["en"]) == []  # existing files are kept


def test_every_language_has_every_prompt():
    for lang, texts in prompts.TEXTS.items():
        assert set(texts) == set(prompts.NAMES), lang


def test_brand_prompt_overrides_the_default(tmp_path):
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "goodbye.wav").write_bytes(b"default")
    brand = tmp_path / "brands" / "my_company" / "en"
    brand.mkdir(parents=True)
    (brand / "goodbye.wav").write_bytes(b"brand")
    found = prompts.resolve(tmp_path, "goodbye", "en", tmp_path / "brands", "my_company")
    assert found == brand / "goodbye.wav"
    found = prompts.resolve(tmp_path, "goodbye", "en", tmp_path / "brands", "")
    assert found == tmp_path / "en" / "goodbye.wav"


def test_missing_language_falls_back_to_english(tmp_path):
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "busy.wav").write_bytes(b"x")
    assert prompts.resolve(tmp_path, "busy", "fr") == tmp_path / "en" / "busy.wav"


def test_brand_name_cannot_leave_the_brand_folder(tmp_path):
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "busy.wav").write_bytes(b"x")
    outside = tmp_path / "en" / "en"
    outside.mkdir()
    (outside / "busy.wav").write_bytes(b"evil")
    found = prompts.resolve(tmp_path, "busy", "en", tmp_path / "brands", "../en")
    assert found == tmp_path / "en" / "busy.wav"


def test_missing_prompt_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        prompts.resolve(tmp_path, "busy", "en")


def test_cli_build(tmp_path, capsys):
    assert prompts.main(["build", str(tmp_path), "--lang", "de"]) == 0
    assert (tmp_path / "de" / "forbidden.wav").is_file()
    count = len(prompts.TEXTS["de"]) + len(vocabulary.WORDS["de"]) + len(prompts.TONES) + 1
    assert f" {count} prompts written" in " " + capsys.readouterr().out
