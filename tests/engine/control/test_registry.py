"""The preprocessor registry: ids that are ControlNet unit types, GUI-ready parameter specs, strict
parameter errors, and every map (H, W, 3) uint8, deterministic and layout-independent."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from engine.control import PREPROCESSORS, CannyParams, LineartParams, ParamSpec, param_specs
from engine.settings import ControlUnit
from engine.settings.codec import SettingsError
from tests.engine.control.images import astronaut

REALTIME = [p for p in PREPROCESSORS.values() if p.realtime]


def small_photo() -> np.ndarray:
    return np.ascontiguousarray(astronaut()[::4, ::4])  # (128, 128, 3)


def test_ids_are_the_control_unit_types() -> None:
    assert list(PREPROCESSORS) == ["canny", "scribble", "lineart", "seg", "pose", "tile", "shuffle"]
    for ident, pre in PREPROCESSORS.items():
        assert pre.id == ident and pre.name
        assert ControlUnit(type=ident, image="layer:x").type == ident
    assert [p.id for p in PREPROCESSORS.values() if not p.realtime] == ["pose"]


def test_specs_describe_widgets() -> None:
    specs = {s.name: s for s in PREPROCESSORS["canny"].specs()}
    assert specs["low"] == ParamSpec("low", "Low threshold", "int", 100, 0, 500, 1, (),
                                     "weak edges above this join strong ones")
    assert specs["blur"].kind == "float" and specs["blur"].minimum == 0.0
    method = param_specs(LineartParams)[0]
    assert (method.kind, method.choices, method.default) == ("choice", ("adaptive", "xdog"), "xdog")
    pose = {s.name: s for s in PREPROCESSORS["pose"].specs()}
    assert pose["hands"].kind == "bool" and pose["hands"].default is True
    for pre in PREPROCESSORS.values():
        for spec in pre.specs():
            assert spec.label and spec.kind in ("int", "float", "bool", "choice")
            if spec.kind in ("int", "float"):
                assert spec.minimum is not None and spec.maximum is not None and spec.step
                assert spec.minimum <= spec.default <= spec.maximum
        pre.make_params()  # the defaults are valid


@pytest.mark.parametrize("pre", PREPROCESSORS.values(), ids=PREPROCESSORS.keys())
def test_every_bound_is_enforced_and_named(pre) -> None:
    for spec in pre.specs():
        if spec.kind not in ("int", "float"):
            continue
        for outside in (spec.minimum - spec.step, spec.maximum + spec.step):
            value = int(outside) if spec.kind == "int" else float(outside)
            with pytest.raises(SettingsError) as info:
                pre.make_params(**{spec.name: value})
            assert info.value.path == spec.name


def test_type_choice_step_and_cross_field_errors() -> None:
    with pytest.raises(SettingsError, match="expected an integer"):
        CannyParams(low=10.5)
    with pytest.raises(SettingsError, match="expected an integer"):
        CannyParams(low=True)
    with pytest.raises(SettingsError, match="low <= high"):
        CannyParams(low=300, high=200)
    with pytest.raises(SettingsError, match="one of adaptive, xdog"):
        LineartParams(method="sobel")
    with pytest.raises(SettingsError, match="block: must be 3 plus a multiple of 2"):
        LineartParams(block=10)
    with pytest.raises(SettingsError, match="xdog needs sigma > 0"):
        LineartParams(method="xdog", sigma=0.0)
    assert LineartParams(method="adaptive", sigma=0.0).sigma == 0.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        CannyParams().low = 5  # type: ignore[misc]
    with pytest.raises(TypeError, match="takes CannyParams"):
        PREPROCESSORS["canny"](small_photo(), LineartParams())


@pytest.mark.parametrize("pre", REALTIME, ids=[p.id for p in REALTIME])
def test_maps_are_rgb8_of_the_input_size_and_deterministic(pre) -> None:
    photo = np.ascontiguousarray(astronaut()[:96, :128])  # not square: catches swapped axes
    before = photo.copy()
    out = pre(photo)
    assert out.shape == (96, 128, 3) and out.dtype == np.uint8 and out.flags.c_contiguous
    np.testing.assert_array_equal(pre(photo), out)
    np.testing.assert_array_equal(photo, before)  # the input is not changed
    assert out.max() > 0  # a real photo gives a non-empty map


@pytest.mark.parametrize("pre", REALTIME, ids=[p.id for p in REALTIME])
def test_grey_rgba_and_16_bit_inputs(pre) -> None:
    photo = small_photo()
    grey = photo[:, :, 1].copy()
    np.testing.assert_array_equal(pre(grey), pre(np.repeat(grey[:, :, None], 3, axis=2)))
    opaque = np.concatenate([photo, np.full(photo.shape[:2] + (1,), 255, np.uint8)], axis=2)
    np.testing.assert_array_equal(pre(opaque), pre(photo))
    np.testing.assert_array_equal(pre(photo.astype(np.uint16) * 257), pre(photo))  # 257 * v / 65535 * 255 = v
    np.testing.assert_array_equal(pre(photo.astype(np.float32) / 255.0), pre(photo))
    with pytest.raises(ValueError, match="shape"):
        pre(np.zeros((8, 8, 2), np.uint8))
