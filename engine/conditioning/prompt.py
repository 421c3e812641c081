"""Prompt weight syntax, parsed with the semantics A1111 users rely on.

``(words)`` multiplies the weight by 1.1, ``[words]`` divides it by 1.1, ``(words:1.3)`` sets
a factor, brackets nest multiplicatively, unbalanced openers apply to the rest of the prompt,
``\\(`` escapes a bracket, and ``BREAK`` forces a new 75-token chunk. ``<lora:...>`` tags are
taken out of the text (the pipeline applies LoRAs from the job settings).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

EMPHASIS = 1.1
TOKEN_RE = re.compile(
    r"""
    \\[()\[\]\\]             # escaped bracket or backslash
  | \\                       # lone backslash
  | \( | \[                  # openers
  | :\s*([+-]?[.\d]+)\s*\)   # ":1.3)" closes a round group with an explicit factor
  | \) | \]                  # closers
  | [^\\()\[\]:]+            # plain text
  | :                        # a colon that is not a weight
    """,
    re.VERBOSE,
)
BREAK_RE = re.compile(r"\s*\bBREAK\b\s*", re.S)
LORA_TAG_RE = re.compile(r"<(?:lora|lyco):[^<>]*>")
BREAK = "BREAK"


@dataclass(frozen=True)
class Fragment:
    """A run of prompt text with one weight; `text == BREAK` with weight -1 marks a chunk break."""

    text: str
    weight: float


def parse_weighted_prompt(prompt: str) -> list[Fragment]:
    """Split a prompt into weighted fragments (A1111 attention syntax)."""
    pieces: list[list] = []  # [text, weight] pairs, mutable while brackets close
    round_open: list[int] = []
    square_open: list[int] = []

    def scale_from(start: int, factor: float) -> None:
        for piece in pieces[start:]:
            piece[1] *= factor

    for match in TOKEN_RE.finditer(LORA_TAG_RE.sub("", prompt)):
        token, factor = match.group(0), match.group(1)
        if token.startswith("\\") and len(token) == 2:
            pieces.append([token[1], 1.0])
        elif token == "(":
            round_open.append(len(pieces))
        elif token == "[":
            square_open.append(len(pieces))
        elif factor is not None and round_open:
            scale_from(round_open.pop(), float(factor))
        elif token == ")" and round_open:
            scale_from(round_open.pop(), EMPHASIS)
        elif token == "]" and square_open:
            scale_from(square_open.pop(), 1 / EMPHASIS)
        else:
            for i, part in enumerate(BREAK_RE.split(token)):
                if i > 0:
                    pieces.append([BREAK, -1.0])
                pieces.append([part, 1.0])
    for start in round_open:
        scale_from(start, EMPHASIS)
    for start in square_open:
        scale_from(start, 1 / EMPHASIS)
    return _merge(pieces)


def _merge(pieces: list[list]) -> list[Fragment]:
    """Join neighbours of equal weight; an empty prompt is one empty fragment."""
    merged: list[list] = []
    for text, weight in pieces:
        if merged and merged[-1][1] == weight and weight != -1.0:
            merged[-1][0] += text
        else:
            merged.append([text, weight])
    return [Fragment(t, w) for t, w in merged] or [Fragment("", 1.0)]
