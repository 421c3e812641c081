"""Which base model a job that names none uses: the user's own first, else the built-in model, and
the model card (atelier.json) that carries a model's recommended settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.models import Family, Layout, ModelEntry, ModelKind, ScanResult
from engine.models.card import read_card, with_recommended, write_card
from engine.pipeline import resolve
from engine.settings import Job, ModelRef


def _entry(path: Path) -> ModelEntry:
    return ModelEntry(path, path.name, ModelKind.CHECKPOINT, Layout.DIFFUSERS_FOLDER, Family.SD1, (Family.SD1,),
                      "unet", 0)


@pytest.fixture
def shipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in resources/models folder holding a built-in model folder."""
    root = tmp_path / "resources" / "models"
    folder = root / resolve.BUILTIN_FOLDER
    (folder / "vae").mkdir(parents=True)
    (folder / "model_index.json").write_text("{}")
    monkeypatch.setattr(resolve, "builtin_models_dir", lambda: root)
    return folder


def test_the_builtin_model_is_used_only_when_the_user_has_none(shipped: Path, tmp_path: Path) -> None:
    user = tmp_path / "user" / "zz-my-model"
    only_builtin = ScanResult((_entry(shipped),))
    assert resolve.resolve_model(ModelRef(), lambda: only_builtin, tmp_path) == (shipped, shipped.name)
    both = ScanResult((_entry(shipped), _entry(user)))  # "atelier-shapes" sorts first, the user's still wins
    assert resolve.resolve_model(ModelRef(), lambda: both, tmp_path)[0] == user
    assert resolve.builtin_model() == shipped and resolve.is_builtin(shipped / "unet")
    assert not resolve.is_builtin(user)


def test_an_image_made_by_another_installs_builtin_model_re_renders_with_this_one(shipped: Path,
                                                                                  tmp_path: Path) -> None:
    elsewhere = ModelRef(name=resolve.BUILTIN_FOLDER, path="/opt/other/resources/models/atelier-shapes")
    assert resolve.resolve_model(elsewhere, lambda: ScanResult(), tmp_path)[0] == shipped


def test_no_builtin_model_without_its_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resolve, "builtin_models_dir", lambda: tmp_path / "nothing")
    assert resolve.builtin_model() is None


def test_card_round_trip_and_recommended_settings(tmp_path: Path) -> None:
    write_card(tmp_path, "Tiny", "does little", {"width": 128, "height": 96, "sampler": "euler", "cfg_scale": 3.5})
    card = read_card(tmp_path)
    assert (card.name, card.description, card.problem) == ("Tiny", "does little", "")
    job = with_recommended(Job(prompt="x"), card)
    assert (job.width, job.height, job.sampler, job.cfg_scale, job.prompt) == (128, 96, "euler", 3.5, "x")
    assert read_card(tmp_path / "unet.safetensors") == card  # a file's card is its folder's
    with pytest.raises(ValueError, match="seed"):
        write_card(tmp_path, "x", "", {"seed": 1})


def test_a_broken_card_is_ignored_with_a_reason(tmp_path: Path) -> None:
    assert read_card(tmp_path) == read_card(tmp_path / "missing")  # no card: empty, no problem
    (tmp_path / "atelier.json").write_text("{not json")
    broken = read_card(tmp_path)
    assert broken.recommended == {} and "ignored" in broken.problem
    (tmp_path / "atelier.json").write_text(json.dumps({"recommended": {"width": 7, "seed": 3, "steps": 12}}))
    card = read_card(tmp_path)
    assert card.recommended == {"width": 7, "steps": 12} and "seed" in card.problem
    job = with_recommended(Job(), card)  # width 7 is not a multiple of 8: skipped, the rest applies
    assert job.width == Job().width and job.steps == 12
