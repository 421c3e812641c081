"""A model folder's card, `atelier.json`: its display name, a line on what it can do, and the
settings it works best with (size, sampler, schedule, steps, CFG, autoguidance). Atelier's built-in model carries
one; a user may add one to any diffusers folder. Reading it never loads torch."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CARD_NAME = "atelier.json"
# The Job fields a card may recommend.
RECOMMENDABLE = ("width", "height", "sampler", "schedule", "steps", "cfg_scale", "autoguidance")


@dataclass(frozen=True)
class ModelCard:
    """What atelier.json says; an empty card when the folder has none (or it cannot be read)."""

    name: str = ""
    description: str = ""
    recommended: dict[str, Any] = field(default_factory=dict)
    problem: str = ""  # why the card was ignored, if it was


def read_card(path: Path) -> ModelCard:
    """The card of a model folder (or of the folder holding a model file)."""
    folder = path if path.is_dir() else path.parent
    card = folder / CARD_NAME
    if not card.is_file():
        return ModelCard()
    try:
        data = json.loads(card.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        recommended = data.get("recommended", {})
        if not isinstance(recommended, dict):
            raise ValueError("'recommended' is not an object")
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return ModelCard(problem=f"{card}: ignored ({exc})")
    unknown = sorted(set(recommended) - set(RECOMMENDABLE))
    return ModelCard(str(data.get("name", "")), str(data.get("description", "")),
                     {k: v for k, v in recommended.items() if k in RECOMMENDABLE},
                     f"{card}: ignored unknown settings {', '.join(unknown)}" if unknown else "")


def write_card(folder: Path, name: str, description: str, recommended: dict[str, Any]) -> Path:
    """Write atelier.json into a model folder."""
    unknown = set(recommended) - set(RECOMMENDABLE)
    if unknown:
        raise ValueError(f"a card cannot recommend {', '.join(sorted(unknown))}")
    path = folder / CARD_NAME
    path.write_text(json.dumps({"name": name, "description": description, "recommended": recommended},
                               indent=2) + "\n", encoding="utf-8")
    return path


def with_recommended(job: Any, card: ModelCard) -> Any:
    """The job with the card's recommended settings applied (a Job; values it rejects are skipped)."""
    import dataclasses

    from engine.settings import SettingsError

    for name, value in card.recommended.items():
        try:
            job = dataclasses.replace(job, **{name: value})
        except (SettingsError, TypeError, ValueError):
            continue
    return job
