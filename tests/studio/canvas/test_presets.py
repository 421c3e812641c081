"""Canvas size presets per model family."""

from __future__ import annotations

import pytest

from studio.canvas.presets import FAMILIES, size_presets


def test_presets_per_family() -> None:
    sizes = {family: [(w, h) for _, w, h in size_presets(family)] for family in FAMILIES}
    assert sizes["sd1"] == [(512, 512), (512, 768), (768, 512)]
    assert (768, 768) in sizes["sd2"]
    assert sizes["builtin"] == [(128, 128)]
    assert sizes["sdxl"] == [(1024, 1024), (896, 1152), (1152, 896), (1216, 832), (832, 1216),
                             (1344, 768), (768, 1344)]
    for family, pairs in sizes.items():
        assert all(w % 64 == 0 and h % 64 == 0 for w, h in pairs), family
    label, w, h = size_presets("sdxl")[0]
    assert "1024" in label and (w, h) == (1024, 1024)


def test_unknown_family_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown model family 'sd4'.*sdxl"):
        size_presets("sd4")
