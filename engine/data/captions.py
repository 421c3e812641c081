"""Captions for shapes-world scenes from varied templates, and the parser that recovers every
(class, colour, size, position) and the background from any caption they produce."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from engine.data.palette import COLOUR_NAMES, SHAPE_CLASSES
from engine.data.render import VISIBLE_THRESHOLD, Raster, rasterise, visible_fractions
from engine.data.scene import POSITIONS, Background, Scene, position_word, size_word

# Visibility is judged at this size, so a scene's caption does not depend on render size.
REFERENCE_SIZE = 128


@dataclass(frozen=True)
class ShapeSpec:
    """What a caption says about one shape. size: "small", "large" or None (not said: medium
    in generated captions); position: canonical 3x3 name (scene.POSITION_NAMES) or None."""

    cls: str
    colour: str
    size: str | None = None
    position: str | None = None


@dataclass(frozen=True)
class BackgroundSpec:
    """What a caption says about the background: one colour, or a gradient's two."""

    colour: str
    colour2: str | None = None


_COUNT_WORDS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4}
_NUMBER_NAMES = {1: "one", 2: "two", 3: "three", 4: "four"}
_SIZE_WORDS = {"small": "small", "little": "small", "tiny": "small", "large": "large", "big": "large"}
_SIZE_SAY = {"small": ("small", "little"), "large": ("large", "big")}
_COLOUR_WORDS = {**{c: c for c in COLOUR_NAMES}, "grey": "gray"}
_PLURALS = {c: c + ("es" if c.endswith(("s", "x", "sh", "ch")) else "s") for c in SHAPE_CLASSES}
_CLASS_WORDS = {**{c: (c, False) for c in SHAPE_CLASSES}, **{p: (c, True) for c, p in _PLURALS.items()}}
_VERTICAL = {"top": "top", "upper": "top", "bottom": "bottom", "lower": "bottom"}
_HORIZONTAL = {"left": "left", "right": "right"}
_POSITION_FILLER = {"centre", "center", "middle", "corner", "side"}
_POSITION_WORDS = set(_VERTICAL) | set(_HORIZONTAL) | _POSITION_FILLER

_POSITION_SAY: dict[str, tuple[str, ...]] = {
    "top left": (
        "at the top left",
        "in the top left",
        "in the top left corner",
        "in the upper left",
    ),
    "top": ("at the top", "at the top centre", "near the top"),
    "top right": (
        "at the top right",
        "in the top right",
        "in the top right corner",
        "in the upper right",
    ),
    "left": ("on the left", "on the left side", "at the middle left"),
    "centre": ("in the centre", "in the middle", "at the center"),
    "right": ("on the right", "on the right side", "at the middle right"),
    "bottom left": (
        "at the bottom left",
        "in the bottom left",
        "in the bottom left corner",
        "in the lower left",
    ),
    "bottom": ("at the bottom", "at the bottom centre", "near the bottom"),
    "bottom right": (
        "at the bottom right",
        "in the bottom right",
        "in the bottom right corner",
        "in the lower right",
    ),
}
_TEMPLATES = (
    "{shapes} on {bg}",
    "{bg} with {shapes}",
    "an image of {shapes} on {bg}",
    "{shapes} against {bg}",
    "a picture of {bg} with {shapes}",
    "{shapes}, on {bg}",
)


def _pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return options[int(rng.integers(len(options)))]


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def scene_specs(scene: Scene, *, raster: Raster | None = None) -> list[ShapeSpec]:
    """The visible shapes of a scene as captions describe them, in draw order; visibility is
    judged at REFERENCE_SIZE (`raster`, if given, must be rasterise(scene, REFERENCE_SIZE))."""
    if raster is not None and (raster.size != REFERENCE_SIZE or raster.scene != scene):
        raise ValueError(f"captions judge visibility on a {REFERENCE_SIZE} px raster of the same scene")
    r = raster if raster is not None else rasterise(scene, REFERENCE_SIZE)
    out = []
    for shape, fraction in zip(scene.shapes, visible_fractions(r)):
        if fraction >= VISIBLE_THRESHOLD:
            word = size_word(shape.size)
            size = None if word == "medium" else word
            out.append(ShapeSpec(shape.cls, shape.colour, size, position_word(shape.cx, shape.cy)))
    return out


def background_spec(background: Background) -> BackgroundSpec:
    """The colours a caption names for a background."""
    return BackgroundSpec(background.colour, background.colour2)


def _colour_say(colour: str, rng: np.random.Generator) -> str:
    return "grey" if colour == "gray" and rng.random() < 0.5 else colour


def _group_phrase(spec: ShapeSpec, positions: list[str], rng: np.random.Generator) -> str:
    """ "a small red star at the top left", "two blue rings, one on the left and one at the top" """
    words = [] if spec.size is None else [_pick(rng, _SIZE_SAY[spec.size])]
    words.append(_colour_say(spec.colour, rng))
    n = len(positions)
    noun = " ".join(words + [spec.cls if n == 1 else _PLURALS[spec.cls]])
    head = f"{_article(noun)} {noun}" if n == 1 else f"{_NUMBER_NAMES[n]} {noun}"
    cells = list(dict.fromkeys(positions))  # distinct, in order
    if len(cells) == 1:
        return f"{head} {_pick(rng, _POSITION_SAY[cells[0]])}"
    counts = [positions.count(c) for c in cells]
    says = [_pick(rng, _POSITION_SAY[c]) for c in cells]
    if all(k == 1 for k in counts) and rng.random() < 0.5:
        return f"{head} {_join(says, rng)}"
    return f"{head}, " + _join([f"{_NUMBER_NAMES[k]} {s}" for k, s in zip(counts, says)], rng)


def _join(parts: list[str], rng: np.random.Generator) -> str:
    if len(parts) == 1:
        return parts[0]
    comma = "," if len(parts) > 2 and rng.random() < 0.5 else ""
    return ", ".join(parts[:-1]) + f"{comma} and {parts[-1]}"


def _background_phrase(background: Background, rng: np.random.Generator) -> str:
    c0 = _colour_say(background.colour, rng)
    if background.colour2 is None:
        return f"{_article(c0)} {c0} background"
    c1 = _colour_say(background.colour2, rng)
    form = int(rng.integers(4))
    if form == 0:
        return f"{_article(c0)} {c0} to {c1} gradient"
    if form == 1:
        return f"{_article(c0)} {c0}-to-{c1} gradient"
    if form == 2:
        return f"a gradient from {c0} to {c1}"
    return f"{_article(c0)} {c0} to {c1} gradient background"


def caption(scene: Scene, rng: np.random.Generator, *, raster: Raster | None = None) -> str:
    """A caption naming every visible shape (class, colour, small/large when clearly so,
    3x3-grid position) and the background, from templates chosen with `rng`.
    `raster`, if given, must be rasterise(scene, REFERENCE_SIZE)."""
    groups: dict[ShapeSpec, list[str]] = {}
    for spec in scene_specs(scene, raster=raster):
        key = ShapeSpec(spec.cls, spec.colour, spec.size)
        groups.setdefault(key, []).append(spec.position or "")
    bg = _background_phrase(scene.background, rng)
    if not groups:
        return bg
    keys = list(groups)
    phrases = [_group_phrase(keys[i], groups[keys[i]], rng) for i in rng.permutation(len(keys))]
    return _pick(rng, _TEMPLATES).format(shapes=_join(phrases, rng), bg=bg)


def _tokens(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def _mention(tokens: list[str], i: int) -> tuple[int, ShapeSpec, int] | None:
    """(count, spec, end) if tokens[i:] start "[count] [size] colour class", else None."""
    j, count = i, None
    if tokens[j] in _COUNT_WORDS:
        count, j = _COUNT_WORDS[tokens[j]], j + 1
    size = None
    if j < len(tokens) and tokens[j] in _SIZE_WORDS:
        size, j = _SIZE_WORDS[tokens[j]], j + 1
    if j + 1 >= len(tokens) or tokens[j] not in _COLOUR_WORDS or tokens[j + 1] not in _CLASS_WORDS:
        return None
    cls, plural = _CLASS_WORDS[tokens[j + 1]]
    if count is None:
        count = 2 if plural else 1
    return count, ShapeSpec(cls, _COLOUR_WORDS[tokens[j]], size), j + 2


def _position(run: list[str]) -> str | None:
    vertical = next((_VERTICAL[w] for w in run if w in _VERTICAL), None)
    horizontal = next((_HORIZONTAL[w] for w in run if w in _HORIZONTAL), None)
    if vertical is None and horizontal is None and not set(run) & {"centre", "center", "middle"}:
        return None  # "corner" or "side" alone says nothing
    row = {"top": 0, None: 1, "bottom": 2}[vertical]
    col = {"left": 0, None: 1, "right": 2}[horizontal]
    return POSITIONS[row][col]


def _expand(count: int, spec: ShapeSpec, runs: list[tuple[int | None, str]]) -> list[ShapeSpec]:
    """Assign a group's position runs (with optional "one at ..." multiplicities) to its shapes."""
    if len(runs) == 1 and runs[0][0] is None:
        positions: list[str | None] = [runs[0][1]] * count
    else:
        positions = [pos for mult, pos in runs for _ in range(mult or 1)]
    positions = (positions + [None] * count)[:count]
    return [ShapeSpec(spec.cls, spec.colour, spec.size, p) for p in positions]


def parse_caption(text: str) -> list[ShapeSpec]:
    """Every shape a caption names, with its colour, size word and position (None where the
    text gives none), in order of mention; a count ("two red stars") yields that many."""
    tokens = _tokens(text)
    out: list[ShapeSpec] = []
    group: tuple[int, ShapeSpec] | None = None
    runs: list[tuple[int | None, str]] = []
    pending: int | None = None
    i = 0
    while i < len(tokens):
        found = _mention(tokens, i)
        if found is not None:
            if group is not None:
                out += _expand(*group, runs)
            group, runs, pending = (found[0], found[1]), [], None
            i = found[2]
        elif tokens[i] in _POSITION_WORDS:
            j = i
            while j < len(tokens) and tokens[j] in _POSITION_WORDS:
                j += 1
            pos = _position(tokens[i:j])
            if pos is not None and group is not None:
                runs.append((pending, pos))
                pending = None
            i = j
        else:
            if tokens[i] in _COUNT_WORDS and tokens[i] not in ("a", "an"):
                pending = _COUNT_WORDS[tokens[i]]
            i += 1
    if group is not None:
        out += _expand(*group, runs)
    return out


def parse_background(text: str) -> BackgroundSpec | None:
    """The background a caption names ("a yellow background", "a blue to white gradient",
    "a gradient from blue to white"), or None."""
    tokens = _tokens(text)
    for i, word in enumerate(tokens):
        if word not in _COLOUR_WORDS or (i + 1 < len(tokens) and tokens[i + 1] in _CLASS_WORDS):
            continue
        rest = tokens[i + 1 : i + 4]
        if len(rest) >= 2 and rest[0] == "to" and rest[1] in _COLOUR_WORDS:
            return BackgroundSpec(_COLOUR_WORDS[word], _COLOUR_WORDS[rest[1]])
        if rest[:1] == ["background"]:
            return BackgroundSpec(_COLOUR_WORDS[word])
    return None
