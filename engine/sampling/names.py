"""Sampler and schedule identifiers with their display names in A1111's vocabulary.

This table is the single source of truth for names: the sampler registry, the GUI and the
image metadata all read it. It imports nothing heavy so settings and metadata can use it
without loading torch.
"""

from __future__ import annotations

# id -> display name, in the order the GUI lists them.
SAMPLER_DISPLAY_NAMES: dict[str, str] = {
    "euler": "Euler",
    "euler_ancestral": "Euler a",
    "heun": "Heun",
    "dpm_2": "DPM2",
    "dpm_2_ancestral": "DPM2 a",
    "lms": "LMS",
    "dpmpp_2s_ancestral": "DPM++ 2S a",
    "dpmpp_sde": "DPM++ SDE",
    "dpmpp_2m": "DPM++ 2M",
    "dpmpp_2m_sde": "DPM++ 2M SDE",
    "dpmpp_3m_sde": "DPM++ 3M SDE",
    "ddim": "DDIM",
    "ddpm": "DDPM",
    "unipc": "UniPC",
    "lcm": "LCM",
}

SCHEDULE_DISPLAY_NAMES: dict[str, str] = {
    "karras": "Karras",
    "exponential": "Exponential",
    "polyexponential": "Polyexponential",
    "simple": "Simple",
    "normal": "Normal",
    "sgm_uniform": "SGM Uniform",
    "ddim_uniform": "DDIM",
    "beta": "Beta",
    "flow_shift": "Flow shift",
}

# Older A1111 versions folded the schedule into the sampler name ("DPM++ 2M Karras").
_SCHEDULE_SUFFIXES: dict[str, str] = {
    "Karras": "karras",
    "Exponential": "exponential",
    "Polyexponential": "polyexponential",
    "SGM Uniform": "sgm_uniform",
}

# Display names other tools write for the same samplers.
_SAMPLER_ALIASES: dict[str, str] = {
    "k_euler": "euler",
    "k_euler_a": "euler_ancestral",
    "euler_a": "euler_ancestral",
    "k_heun": "heun",
    "k_dpm_2": "dpm_2",
    "k_dpm_2_a": "dpm_2_ancestral",
    "k_lms": "lms",
    "plms": "lms",
    "dpm++ 2s a": "dpmpp_2s_ancestral",
    "dpm++ 2m sde heun": "dpmpp_2m_sde",
    "uni_pc": "unipc",
}

# A1111's "Automatic" and "Uniform" schedule names, mapped to ours.
_SCHEDULE_ALIASES: dict[str, str] = {
    "automatic": "normal",
    "uniform": "simple",
    "ddim_uniform": "ddim_uniform",
}


def sampler_display_name(sampler_id: str) -> str:
    """The A1111-style display name of a sampler id (ValueError for an unknown id)."""
    try:
        return SAMPLER_DISPLAY_NAMES[sampler_id]
    except KeyError:
        raise ValueError(
            f"unknown sampler {sampler_id!r}; valid: {', '.join(SAMPLER_DISPLAY_NAMES)}"
        ) from None


def schedule_display_name(schedule_id: str) -> str:
    """The A1111-style display name of a schedule id (ValueError for an unknown id)."""
    try:
        return SCHEDULE_DISPLAY_NAMES[schedule_id]
    except KeyError:
        raise ValueError(
            f"unknown schedule {schedule_id!r}; valid: {', '.join(SCHEDULE_DISPLAY_NAMES)}"
        ) from None


def _lookup(table: dict[str, str], aliases: dict[str, str], name: str) -> str | None:
    key = name.strip()
    if key in table:
        return key
    lowered = key.lower()
    for ident, display in table.items():
        if display.lower() == lowered:
            return ident
    return aliases.get(lowered)


def parse_sampler_name(name: str) -> tuple[str, str | None]:
    """Map a sampler name written by us or by A1111-family tools to (sampler id, schedule id or None).

    Accepts ids ("dpmpp_2m"), display names ("DPM++ 2M") and the older combined form
    ("DPM++ 2M Karras"), whose schedule part is returned as the second element.
    """
    ident = _lookup(SAMPLER_DISPLAY_NAMES, _SAMPLER_ALIASES, name)
    if ident is not None:
        return ident, None
    for suffix, schedule in _SCHEDULE_SUFFIXES.items():
        if name.strip().endswith(" " + suffix):
            base = _lookup(SAMPLER_DISPLAY_NAMES, _SAMPLER_ALIASES, name.strip()[: -len(suffix) - 1])
            if base is not None:
                return base, schedule
    raise ValueError(f"unknown sampler {name!r}; valid: {', '.join(SAMPLER_DISPLAY_NAMES.values())}")


def parse_schedule_name(name: str) -> str:
    """Map a schedule id or A1111 display name ("Karras", "SGM Uniform") to our schedule id."""
    ident = _lookup(SCHEDULE_DISPLAY_NAMES, _SCHEDULE_ALIASES, name)
    if ident is None:
        raise ValueError(
            f"unknown schedule {name!r}; valid: {', '.join(SCHEDULE_DISPLAY_NAMES.values())}"
        )
    return ident
