"""Prompt weight syntax for the editor: spans to highlight and Ctrl+Up/Down weight edits.

Pure text functions (no Qt) so they are tested directly. The syntax is A1111's:
``(words:1.2)`` explicit weight, ``(words)`` x1.1, ``[words]`` /1.1, ``<lora:name:0.8>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

WEIGHT_RE = re.compile(r"\(([^()]*?):\s*([-+]?\d*\.?\d+)\s*\)")
EMPHASIS_RE = re.compile(r"\(([^():]*)\)")
DEEMPHASIS_RE = re.compile(r"\[([^\[\]]*)\]")
LORA_RE = re.compile(r"<(lora|lyco|hypernet):[^<>]*>")

SpanKind = Literal["weight", "emphasis", "deemphasis", "lora", "number"]


@dataclass(frozen=True)
class Span:
    """A highlighted run of prompt text: [start, end) and what it is."""

    start: int
    end: int
    kind: SpanKind


def syntax_spans(text: str) -> list[Span]:
    """The weight-syntax spans of a prompt line, sorted by start."""
    spans: list[Span] = []
    for m in WEIGHT_RE.finditer(text):
        spans.append(Span(m.start(), m.end(), "weight"))
        spans.append(Span(m.start(2), m.end(2), "number"))
    for regex, kind in ((EMPHASIS_RE, "emphasis"), (DEEMPHASIS_RE, "deemphasis"), (LORA_RE, "lora")):
        spans.extend(Span(m.start(), m.end(), kind) for m in regex.finditer(text))
    return sorted(spans, key=lambda s: (s.start, -s.end))


def _format_weight(weight: float) -> str:
    return f"{weight:.2f}".rstrip("0").rstrip(".") if weight % 1 else f"{weight:.1f}"


def adjust_weight(text: str, start: int, end: int, delta: float) -> tuple[str, int, int]:
    """Raise or lower the weight of the selection (or the word at the cursor) by `delta`.

    Returns the new text and the new selection, which covers the words inside the group.
    A group whose weight returns to 1 is unwrapped.
    """
    start, end = sorted((start, end))
    for m in WEIGHT_RE.finditer(text):  # already inside "(words:w)": change w
        if m.start() <= start and end <= m.end():
            weight = round(float(m.group(2)) + delta, 2)
            words = m.group(1)
            if abs(weight - 1.0) < 1e-9:
                return text[: m.start()] + words + text[m.end():], m.start(), m.start() + len(words)
            group = f"({words}:{_format_weight(weight)})"
            return text[: m.start()] + group + text[m.end():], m.start() + 1, m.start() + 1 + len(words)
    if start == end:
        start, end = _word_at(text, start)
        if start == end:
            return text, start, end
    words = text[start:end].strip()
    lead = len(text[start:end]) - len(text[start:end].lstrip())
    start, end = start + lead, start + lead + len(words)
    weight = round(1.0 + delta, 2)
    group = f"({words}:{_format_weight(weight)})"
    return text[:start] + group + text[end:], start + 1, start + 1 + len(words)


def _word_at(text: str, pos: int) -> tuple[int, int]:
    """The bounds of the word (letters, digits, _ and -) around `pos`."""
    is_word = lambda c: c.isalnum() or c in "_-"  # noqa: E731
    left = pos
    while left > 0 and is_word(text[left - 1]):
        left -= 1
    right = pos
    while right < len(text) and is_word(text[right]):
        right += 1
    return left, right
