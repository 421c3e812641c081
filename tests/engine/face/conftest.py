"""The real photo the face tests run on (skimage's astronaut, Eileen Collins, public domain) and
mediapipe's reading of it, found once per session."""

from __future__ import annotations

import numpy as np
import pytest

from engine.face import FiveLandmarks, find_faces


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """(512, 512, 3) uint8 RGB, read-only so no test can change it for the others."""
    from skimage import data

    image = data.astronaut()
    image.setflags(write=False)
    return image


@pytest.fixture(scope="session")
def astronaut_face(astronaut: np.ndarray) -> FiveLandmarks:
    """The one face mediapipe finds in the astronaut."""
    faces = find_faces(astronaut, source="mediapipe")
    assert len(faces) == 1
    return faces[0]
