"""Pose: MediaPipe keypoints on a real photo (the astronaut) land where her face and shoulders are,
the map carries OpenPose's colours there, detection on huge images maps back exactly, moving a joint
redraws only its limbs, and drawing follows controlnet_aux on hand-made keypoints."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest

from engine.control import (
    PREPROCESSORS,
    Keypoint,
    PoseKeypoints,
    PoseNotFoundError,
    PoseParams,
    detect_pose,
    draw_pose,
    pose_map,
    redraw_pose,
    with_joint_moved,
)
from engine.control.pose import (
    BODY_POINTS,
    COLORS,
    FACE_POINTS,
    HAND_JOINT_COLOR,
    JOINT_RADIUS,
    MEDIAPIPE_FACE,
    STICK_WIDTH,
    _attach_face,
    _attach_hands,
    hand_bone_color,
)
from engine.imaging import downscale_for_analysis
from engine.settings.codec import SettingsError
from tests.engine.control.images import STICK_FIGURE, astronaut, stick_figure

B = {name: i for i, name in enumerate(BODY_POINTS)}


def shade(color: tuple[int, int, int]) -> list[int]:
    return [int(c * 0.6) for c in color]


@pytest.fixture(scope="module")
def person() -> PoseKeypoints:
    people = detect_pose(astronaut())
    assert len(people) == 1
    return people[0]


def inside(point: Keypoint | None, xs: tuple[float, float], ys: tuple[float, float]) -> bool:
    assert point is not None
    return xs[0] <= point.x <= xs[1] and ys[0] <= point.y <= ys[1]


def test_face_and_shoulders_are_found_where_they_are(person: PoseKeypoints) -> None:
    """Boxes from the 512 px photo itself: her head spans about x 170-280, y 30-185 (hair to chin),
    eyes at y ~ 100-110 left and right of x ~ 225; the suit's shoulder line runs at y ~ 230-265 with
    her right shoulder (image left) near x 110 and her left near x 305; below the chest is out of frame."""
    body = person.body
    nose, r_eye, l_eye = body[B["nose"]], body[B["right_eye"]], body[B["left_eye"]]
    assert inside(nose, (200, 245), (110, 150))
    assert inside(r_eye, (185, 220), (90, 120)) and inside(l_eye, (230, 265), (95, 125))
    assert r_eye.x < nose.x < l_eye.x and nose.y > max(r_eye.y, l_eye.y) + 5  # between the eyes, below them
    assert 25 < l_eye.x - r_eye.x < 70
    assert inside(body[B["right_ear"]], (165, 205), (85, 135)) and inside(body[B["left_ear"]], (255, 290), (95, 145))
    r_sh, l_sh, neck = body[B["right_shoulder"]], body[B["left_shoulder"]], body[B["neck"]]
    assert inside(r_sh, (80, 150), (215, 270)) and inside(l_sh, (270, 340), (225, 285))
    assert (neck.x, neck.y) == pytest.approx(((r_sh.x + l_sh.x) / 2, (r_sh.y + l_sh.y) / 2))
    below_frame = ("right_hip", "left_hip", "right_knee", "left_knee", "right_ankle", "left_ankle")
    assert all(body[B[n]] is None for n in below_frame)
    assert all(p is None or 0.5 <= p.visibility <= 1.0 for p in body)


def test_face_points_follow_the_openpose_layout(person: PoseKeypoints) -> None:
    face = person.face
    assert face is not None and len(face) == FACE_POINTS
    xy = np.array([(p.x, p.y) for p in face])
    assert (xy.min(0) >= (160, 70)).all() and (xy.max(0) <= (290, 200)).all()
    assert xy[36, 0] < xy[68, 0] < xy[39, 0] and xy[42, 0] < xy[69, 0] < xy[45, 0]  # pupils inside the eyes
    assert xy[39, 0] < xy[30, 0] < xy[42, 0] and xy[8, 1] == xy[:, 1].max()  # nose tip centred, chin lowest
    assert xy[:17, 0].argmin() < 3 and xy[:17, 0].argmax() > 13  # the jaw runs from her right to her left


def test_the_map_has_openpose_colours_at_the_joints_and_limbs(person: PoseKeypoints) -> None:
    body = person.body
    pose = draw_pose([person], 512, 512)
    np.testing.assert_array_equal(PREPROCESSORS["pose"](astronaut()), pose)

    def at(p: Keypoint) -> list[int]:
        return pose[int(p.y), int(p.x)].tolist()

    def mid(a: str, b: str) -> list[int]:
        p, q = body[B[a]], body[B[b]]
        return pose[int((p.y + q.y) / 2), int((p.x + q.x) / 2)].tolist()

    assert at(body[B["neck"]]) == list(COLORS[1])
    assert at(body[B["right_shoulder"]]) == list(COLORS[2]) and at(body[B["left_shoulder"]]) == list(COLORS[5])
    assert mid("neck", "right_shoulder") == shade(COLORS[0]) and mid("neck", "left_shoulder") == shade(COLORS[1])
    assert mid("neck", "nose") == shade(COLORS[12])
    assert mid("right_shoulder", "right_elbow") == shade(COLORS[2])
    face_point = person.face[48]  # a mouth corner: white
    assert at(face_point) == [255, 255, 255]
    assert pose[450:, 300:].max() == 0  # nothing where no body part is


def test_moving_a_joint_changes_the_map_only_near_its_limbs(person: PoseKeypoints) -> None:
    people = (person,)
    before = draw_pose(people, 512, 512)
    old = person.body[B["left_shoulder"]]
    moved = with_joint_moved(people, 0, "body", B["left_shoulder"], (old.x + 30, old.y + 40))
    after = draw_pose(moved, 512, 512)
    new, neck = moved[0].body[B["left_shoulder"]], person.body[B["neck"]]
    assert (new.x, new.y, new.visibility) == (old.x + 30, old.y + 40, old.visibility)
    assert moved[0].body[:5] == person.body[:5] and moved[0].face == person.face  # the rest is unchanged
    changed = np.nonzero((before != after).any(axis=2))
    margin = STICK_WIDTH + JOINT_RADIUS + 2  # only the neck-left-shoulder limb touches this joint (no elbow)
    xs, ys = (neck.x, old.x, new.x), (neck.y, old.y, new.y)
    assert len(changed[0]) > 100
    assert changed[0].min() >= min(ys) - margin and changed[0].max() <= max(ys) + margin
    assert changed[1].min() >= min(xs) - margin and changed[1].max() <= max(xs) + margin
    assert after[int(new.y), int(new.x)].tolist() == list(COLORS[5])
    assert after[int(old.y), int(old.x)].tolist() == [0, 0, 0]
    assert person.body[B["left_shoulder"]] is old  # the input is not changed


def test_moving_needs_an_existing_point(person: PoseKeypoints) -> None:
    with pytest.raises(ValueError, match="was not found"):
        with_joint_moved([person], 0, "body", B["left_hip"], (1, 2))
    with pytest.raises(ValueError, match="has no left hand"):
        with_joint_moved([person], 0, "left_hand", 0, (1, 2))
    with pytest.raises(ValueError, match="unknown pose part"):
        with_joint_moved([person], 0, "tail", 0, (1, 2))
    with pytest.raises(IndexError):
        with_joint_moved([person], 1, "body", 0, (1, 2))
    with pytest.raises(IndexError):
        with_joint_moved([person], 0, "face", FACE_POINTS, (1, 2))
    with pytest.raises(ValueError, match="finite"):
        with_joint_moved([person], 0, "body", 0, (math.nan, 2))


def test_huge_images_are_detected_small_and_mapped_back_exactly() -> None:
    big = cv2.resize(astronaut(), (1536, 1536), interpolation=cv2.INTER_CUBIC)
    params = PoseParams(max_side=512, face=False, hands=False)
    found = detect_pose(big, params)[0]
    small = downscale_for_analysis(big, 512)
    direct = detect_pose(small.image, params)[0]
    assert small.scale == 3.0 and found.face is None
    for p, q in zip(found.body, direct.body):
        assert (p is None) == (q is None)
        if p is not None:
            assert (p.x, p.y) == pytest.approx((q.x * 3.0, q.y * 3.0), abs=1e-6)


def test_no_person_gives_an_empty_list_and_a_clear_error() -> None:
    empty = np.full((128, 160, 3), 128, np.uint8)
    assert detect_pose(empty) == []
    with pytest.raises(PoseNotFoundError, match="No person found"):
        pose_map(empty)
    assert draw_pose([], 160, 128).shape == (128, 160, 3) and draw_pose([], 160, 128).max() == 0


def fan_hand(x0: float, y0: float) -> tuple[Keypoint, ...]:
    """A wrist and five straight fingers fanned upwards, joints 12 px apart."""
    points = [Keypoint(x0, y0)]
    for finger in range(5):
        angle = math.radians(-150 + 30 * finger)
        points += [Keypoint(x0 + 12 * j * math.cos(angle), y0 + 12 * j * math.sin(angle)) for j in range(1, 5)]
    return tuple(points)


def test_drawing_follows_controlnet_aux_on_hand_made_keypoints() -> None:
    body = [None] * 18
    body[0], body[1] = Keypoint(50, 50), Keypoint(50, 110)
    hand = fan_hand(150, 150)
    person = PoseKeypoints(tuple(body), right_hand=hand, face=(Keypoint(10, 10),) * FACE_POINTS)
    pose = draw_pose([person], 200, 180)
    assert pose.shape == (180, 200, 3)
    assert pose[50, 50].tolist() == list(COLORS[0]) and pose[110, 50].tolist() == list(COLORS[1])
    assert pose[80, 50].tolist() == shade(COLORS[12])  # limb neck -> nose, an ellipse 2 * 4 px wide
    assert pose[80, 50 + STICK_WIDTH + 1].tolist() == [0, 0, 0] and pose[80, 50 + STICK_WIDTH - 1].max() > 0
    assert hand_bone_color(0) == (255, 0, 0) and hand_bone_color(5) == (128, 255, 0)
    bone0 = ((hand[0].x + hand[1].x) / 2 + 0.5, (hand[0].y + hand[1].y) / 2 + 0.5)  # wrist -> thumb base, a 2 px line
    assert pose[int(bone0[1]), int(bone0[0])].tolist() == [255, 0, 0]
    assert pose[int(hand[8].y), int(hand[8].x)].tolist() == list(HAND_JOINT_COLOR)
    assert pose[10, 10].tolist() == [255, 255, 255] and pose[10, 14].tolist() == [0, 0, 0]
    with pytest.raises(ValueError, match="needs 21 points"):
        PoseKeypoints(tuple(body), left_hand=hand[:20])
    with pytest.raises(ValueError, match="map size"):
        draw_pose([person], 0, 10)


def test_hands_and_face_are_attached_by_the_body_not_by_mediapipe_labels() -> None:
    """MediaPipe's handedness assumes a mirrored selfie, so each hand goes to the body wrist (pose
    landmarks 15 = left, 16 = right) its own wrist is nearest to, within the hand's size."""
    body = np.zeros((33, 3))
    body[0, :2], body[15, :2], body[16, :2] = (100, 50), (300, 300), (40, 310)

    def hand_at(x: float, y: float) -> np.ndarray:
        points = np.array([(x + 3 * (i % 5), y - 4 * (i // 5), 0.0) for i in range(21)])
        points[0, :2] = (x, y)
        return points

    near_right, near_left, far = hand_at(45, 305), hand_at(296, 304), hand_at(200, 100)
    left, right = _attach_hands([near_right, far, near_left], body)
    assert left is not None and right is not None
    assert (left[0].x, left[0].y) == (296, 304) and (right[0].x, right[0].y) == (45, 305)
    assert _attach_hands([far], body) == (None, None)
    mesh = np.zeros((478, 3))
    mesh[:, :2] = np.random.default_rng(0).uniform((80, 30), (120, 80), size=(478, 2))
    mesh[1, :2] = (101, 52)
    elsewhere = mesh.copy()
    elsewhere[:, 0] += 200
    face = _attach_face([elsewhere, mesh], body)
    assert face is not None and len(face) == FACE_POINTS
    assert [(p.x, p.y) for p in face] == [tuple(mesh[i, :2]) for i in MEDIAPIPE_FACE]
    assert _attach_face([elsewhere], body) is None


def test_keypoints_round_trip_through_json_exactly(person: PoseKeypoints) -> None:
    hand_made = PoseKeypoints(stick_figure()[0].body, left_hand=fan_hand(40, 100), right_hand=None)
    for keypoints in (person, hand_made):
        data = json.loads(json.dumps(keypoints.to_dict()))
        assert PoseKeypoints.from_dict(data) == keypoints
    data = hand_made.to_dict()
    assert data["body"][0] == {"x": 64.0, "y": 20.0, "visibility": 0.9} and data["body"][B["right_knee"]] is None
    assert data["right_hand"] is None and data["face"] is None and len(data["left_hand"]) == 21


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["body"][0].update(x="64"), r"pose\[0\]\.body\[0\]\.x: expected a number"),
        (lambda d: d["body"][0].update(visibility=1.5), r"pose\[0\]\.body\[0\]: visibility must be within"),
        (lambda d: d["body"][0].pop("y"), r"pose\[0\]\.body\[0\]\.y: missing required key"),
        (lambda d: d["body"].pop(), r"pose\[0\]: body needs 18 points, got 17"),
        (lambda d: d.update(left_hand=[None] * 20), r"pose\[0\]: left_hand needs 21 points"),
        (lambda d: d.update(tail=[]), r"pose\[0\]\.tail: unknown key"),
        (lambda d: d.update(body="all of it"), r"pose\[0\]\.body: expected a list"),
    ],
    ids=["type", "visibility", "missing", "count", "hand", "unknown", "part"],
)
def test_bad_keypoint_json_names_the_field(edit, message: str) -> None:
    data = stick_figure()[0].to_dict()
    edit(data)
    with pytest.raises(SettingsError, match=message):
        PoseKeypoints.from_dict(data, "pose[0]")


def test_redraw_replaces_only_the_moved_limbs_and_keeps_paint() -> None:
    old = stick_figure()
    new = with_joint_moved(old, 0, "body", B["left_wrist"], (120, 100))
    assert (redraw_pose(draw_pose(old, 128, 128), old, new) == draw_pose(new, 128, 128)).all()  # unpainted: a fresh map

    painted = draw_pose(old, 128, 128)
    painted[110:120, 5:25] = 255  # a stroke far from the skeleton
    painted[82:86, 88:101] = 255  # a stroke across the old elbow -> wrist limb, clear of the new one
    nose = STICK_FIGURE["nose"]
    painted[int(nose[1]) - 4:int(nose[1]) + 5, int(nose[0]) - 4:int(nose[0]) + 5] = 0  # the nose erased
    assert painted[80, 96].any() and painted[88, 98].any()  # on the old limb and wrist
    redrawn = redraw_pose(painted, old, new)
    fresh = draw_pose(new, 128, 128)
    assert (redrawn[110:120, 5:25] == 255).all() and (redrawn[82:86, 88:101] == 255).all()
    assert redrawn[20, 64].tolist() == [0, 0, 0]  # the unmoved nose stays erased
    assert redrawn[80, 96].tolist() == [0, 0, 0] and redrawn[88, 98].tolist() == [0, 0, 0]  # old limb and joint gone
    assert redrawn[100, 120].tolist() == list(COLORS[B["left_wrist"]])  # the wrist where it was dragged
    changed = (draw_pose(old, 128, 128) != fresh).any(axis=2)  # (H, W)
    assert (redrawn[~changed] == painted[~changed]).all()  # nothing else is touched
    new_limbs = changed & fresh.any(axis=2)
    assert (redrawn[new_limbs] == fresh[new_limbs]).all()
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8 pose map"):
        redraw_pose(painted[..., 0], old, new)
