"""The built-in model that ships in resources/models: complete, small, documented by its training
records, and what `atelier render` uses when the user has no model of their own."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.metadata import read_image_settings
from engine.models.card import read_card
from engine.models.detect import detect_path
from engine.paths import HOME_ENV, builtin_models_dir
from engine.pipeline import builtin_model
from studio.cli import main

WEIGHT_BUDGET = 40 * 2**20  # every built-in model together


def test_the_builtin_model_ships_complete_and_within_the_weight_budget() -> None:
    folder = builtin_model()
    assert folder is not None, "resources/models/atelier-shapes is missing: run `make train-builtin`"
    det = detect_path(folder)
    assert det.prediction_type == "flow" and detect_path(folder / "vae").architecture == "vqgan"
    weights = sum(p.stat().st_size for p in builtin_models_dir().rglob("*.safetensors"))
    assert weights <= WEIGHT_BUDGET
    card = read_card(folder)
    assert card.name and card.description and card.recommended["width"] == 128 and not card.problem
    for record_path in (folder / "training.json", folder / "vae" / "training.json"):
        record = json.loads(record_path.read_text())
        assert record["command"].startswith("python -m engine.train ")
        assert isinstance(record["data_seed"], int) and record["figures"]


def _default_config(model: str) -> dict[str, object]:
    """The config `python -m engine.train` trains a shipped record's model with when given no options."""
    from engine.train.controlnet import ControlNetConfig
    from engine.train.detector import DetectorConfig
    from engine.train.flow import FlowConfig
    from engine.train.sr import SRConfig
    from engine.train.vqgan import VQGANConfig

    cls = {"flow": FlowConfig, "vqgan": VQGANConfig, "detector": DetectorConfig, "sr": SRConfig}.get(model)
    config = cls() if cls else ControlNetConfig()
    return json.loads(json.dumps(dataclasses.asdict(config)))  # tuples as lists, like the record


def test_every_shipped_record_holds_the_settings_make_train_builtin_uses() -> None:
    """A record copied from an older run (or a default changed without retraining) would describe weights
    that `make train-builtin` no longer reproduces."""
    records = sorted(builtin_models_dir().rglob("training.json"))
    assert len(records) == 8  # flow, guide, VQGAN, detector, upscaler, three ControlNets
    flow_steps = _default_config("flow")
    for path in records:
        record = json.loads(path.read_text())
        config = record["config"]
        if record["model"] == "flow-guide":  # a snapshot of the flow run above
            assert config["step"] == flow_steps["guide_step"], path
            continue
        expected = _default_config(record["model"])
        assert {k: v for k, v in config.items() if k in expected} == expected, path
        assert record.get("reproduce", record["command"]).split()[:4] == [
            "python", "-m", "engine.train", record["model"].split("-")[0]], path
        assert isinstance(record["training_seconds"], float) and record["threads"] == 2, path


def test_render_uses_the_builtin_model_when_the_user_has_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "home"))  # an empty user models folder
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "star.png"
    assert main(["render", "--prompt", "a large red star on a blue background", "--steps", "8", "--seed", "1",
                 "--device", "cpu", "-o", str(out)]) == 0
    image = np.asarray(Image.open(out).convert("RGB"))
    job = read_image_settings(out).job
    assert image.shape == (128, 128, 3) and image.std() > 5
    assert Path(job.model.path or "") == builtin_model() and job.sampler == "euler" and job.steps == 8
    again = tmp_path / "again.png"
    assert main(["render", "--from", str(out), "-o", str(again)]) == 0
    assert np.array_equal(np.asarray(Image.open(again).convert("RGB")), image)
