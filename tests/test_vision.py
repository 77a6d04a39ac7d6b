"""Frame -> 28x28 model input, on arrays: ROI, binarization, digit picking, MNIST framing."""

import cv2
import numpy as np
import pytest

import main
import synthetic_camera as sc


def paper(width=640, height=480, brightness=210, seed=0, shadow=True):
    """Unevenly lit blank paper as a camera sees it (gradient, soft shadow, noise)."""
    rng = np.random.default_rng(seed)
    scene = sc.random_scene(rng, width, height)
    if not shadow:
        scene.shadow = None
        scene.light = sc.lit_paper(scene, width, height)
    return sc.camera_frame(scene, None, rng, (width, height))


def roi_ink(frame, faint_edges=False):
    """The centred ROI's ink as single-digit mode finds it (automatic threshold)."""
    ink, _ = main.ink_in(frame, main.centered_roi(frame.shape), main.AUTO_THRESHOLD, main.WORK_SIDE,
                         line_lengths=(0.8, 1.0), faint_edges=faint_edges)
    return ink


def frame_with(draw, width=640, height=480, seed=0):
    """Paper with something drawn in dark ink by `draw(ink_alpha, roi_x, roi_y, side)`."""
    rng = np.random.default_rng(seed)
    scene = sc.random_scene(rng, width, height)
    alpha = np.zeros((height, width), np.float32)
    x0, y0, side = sc.roi_box(width, height)
    draw(alpha, x0, y0, side)
    gray = scene.light * (1.0 - alpha * 0.75)
    return cv2.cvtColor(np.clip(gray, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)


def test_roi_is_a_centred_square_of_half_the_shorter_side():
    assert main.centered_roi((480, 640), 0.5) == (200, 120, 240, 240)
    assert main.centered_roi((720, 1280, 3), 1.0) == (280, 0, 720, 720)


@pytest.mark.parametrize("seed", range(6))
def test_blank_paper_under_uneven_light_and_shadow_is_no_digit(seed):
    assert main.preprocess_frame(paper(seed=seed)).model_input is None


def test_automatic_threshold_finds_ink_in_shadow_and_light():
    gray = np.full((200, 200), 220, np.uint8)
    gray[:, :100] = 90                      # half the paper in deep shadow
    cv2.line(gray, (50, 40), (50, 160), 40, 6)    # ink in the shadow
    cv2.line(gray, (150, 40), (150, 160), 120, 6)  # ink in the light, lighter than the shadow
    ink = main.binarize(gray, main.AUTO_THRESHOLD)
    assert ink[100, 50] == 255 and ink[100, 150] == 255
    assert ink[100, 20] == 0 and ink[100, 180] == 0   # neither paper half is ink
    assert np.count_nonzero(ink) < 0.1 * ink.size


def test_faint_ink_counts_on_paper_even_enough_to_tell_it_from_the_paper():
    """A stroke at 86 % of the paper's light (a hard pencil) is ink on even paper; on paper
    whose own texture strays as far, ink must be as dark as on any paper (80 %)."""
    even = np.full((240, 240), 220, np.uint8)
    cv2.line(even, (120, 40), (120, 200), 189, 4)
    assert main.binarize(even)[120, 120] == 255
    rng = np.random.default_rng(0)
    texture = cv2.GaussianBlur(rng.normal(0, 40, (240, 240)).astype(np.float32), (0, 0), 1.0)
    uneven = np.clip(even + texture, 0, 255).astype(np.uint8)
    assert main.faintest_ink(main.brightness_ratio(uneven)) == main.INK_RATIO_RANGE[1]
    assert np.count_nonzero(main.binarize(uneven)) < 0.01 * uneven.size


def test_a_grainy_picture_is_smoothed_before_its_ink_is_found():
    """A dim room's sensor noise (sigma 12) on paper with a thin 1: read as it came, noise
    pixels pass for ink and break the stroke; smoothed first, the stroke is whole and alone."""
    frame = np.full((480, 640), 200, np.float32)
    cv2.line(frame, (320, 160), (320, 320), 120, 2)
    clean = frame.astype(np.uint8)
    grainy = np.clip(frame + np.random.default_rng(1).normal(0, 12, frame.shape), 0, 255).astype(np.uint8)
    assert main.graininess(clean) < main.GRAINY <= main.graininess(grainy)
    _, components = main.ink_components(roi_ink(grainy))
    assert len(components) == 1 and components[0].h >= 150, [c.box for c in components]


def test_a_thin_stroke_out_of_focus_is_joined_again_by_its_faint_parts():
    """A thin 1 that fades (out of focus) to 83 % of the paper's light for a few pixels: the
    threshold cuts it in two there, the faint ink next to clear ink joins it again; a faint
    printed line across the ROI, away from the ink, stays out; a bold digit gains no halo."""
    frame = np.full((480, 640), 220, np.uint8)
    cv2.line(frame, (320, 150), (320, 330), 120, 3)
    frame[237:241, 317:324] = 183                      # the faded part
    cv2.line(frame, (0, 380), (639, 380), 190, 1)      # a faint printed line, far from the 1
    for faint_edges, pieces in ((False, 2), (True, 1)):
        _, components = main.ink_components(roi_ink(frame, faint_edges))
        assert len(components) == pieces, [c.box for c in components]
    assert main.preprocess_frame(frame).model_input is not None
    bold = np.full((480, 640), 220, np.uint8)
    cv2.ellipse(bold, (320, 240), (45, 70), 0, 0, 360, 40, 16)
    cv2.ellipse(bold, (320, 240), (45, 70), 0, 0, 360, 183, 24)   # its soft edge, faint
    cv2.ellipse(bold, (320, 240), (45, 70), 0, 0, 360, 40, 16)
    assert np.array_equal(roi_ink(bold), roi_ink(bold, faint_edges=True))


# Pale enough that in gray they are above 90 % of the paper's light, where even faint ink
# (a pencil's) is not looked for; in the channel they darken, at 82-87 %.
@pytest.mark.parametrize("paper_bgr, ink_bgr", [((225, 225, 225), (190, 190, 250)),   # pale red
                                                 ((120, 230, 240), (120, 200, 240)),   # on yellow
                                                 ((225, 225, 225), (240, 215, 185))])  # pale blue
def test_pale_coloured_ink_is_read_in_the_channel_it_darkens(paper_bgr, ink_bgr):
    frame = np.zeros((480, 640, 3), np.uint8)
    frame[:] = paper_bgr
    cv2.line(frame, (320, 170), (320, 310), ink_bgr, 8)
    cv2.line(frame, (270, 180), (320, 170), ink_bgr, 8)
    ink = roi_ink(frame)
    assert ink[120, 120] == 255 and ink[120, 60] == 0 and ink[20, 120] == 0
    in_gray = main.binarize(main.to_gray_uint8(frame))
    assert in_gray[240, 320] == 0   # gray alone sees no ink there


def test_fixed_threshold_is_a_global_cut():
    gray = np.array([[10, 99, 100, 200]], np.uint8)
    assert list(main.binarize(gray, 100)[0]) == [255, 255, 0, 0]


def draw_stroke_digit(alpha, x0, y0, side, thickness=10):
    # A "7": a bar and a slanted stem, well inside the ROI
    cv2.line(alpha, (x0 + 70, y0 + 60), (x0 + 170, y0 + 60), 1.0, thickness)
    cv2.line(alpha, (x0 + 170, y0 + 60), (x0 + 110, y0 + 190), 1.0, thickness)


def test_model_input_is_mnist_framed_float32():
    result = main.preprocess_frame(frame_with(draw_stroke_digit))
    x = result.model_input
    assert x.shape == (28, 28) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() > 0.9
    ys, xs = np.nonzero(x > 0.05)
    assert max(ys.max() - ys.min(), xs.max() - xs.min()) + 1 in (20, 21, 22)  # 20 px box
    m = cv2.moments(x)
    assert abs(m["m10"] / m["m00"] - 14) < 0.6 and abs(m["m01"] / m["m00"] - 14) < 0.6


def test_specks_and_marks_touching_the_roi_edge_are_ignored():
    def draw(alpha, x0, y0, side):
        draw_stroke_digit(alpha, x0, y0, side)
        cv2.circle(alpha, (x0 + 30, y0 + 200), 2, 1.0, -1)                  # a speck
        cv2.line(alpha, (x0, y0 + 10), (x0 + side, y0 + 30), 1.0, 8)       # paper edge, across
    with_noise = main.preprocess_frame(frame_with(draw)).model_input
    clean = main.preprocess_frame(frame_with(draw_stroke_digit)).model_input
    assert np.abs(with_noise - clean).max() < 0.05


def test_only_edge_marks_and_specks_mean_no_digit():
    def draw(alpha, x0, y0, side):
        cv2.line(alpha, (x0 - 5, y0 + 100), (x0 + 90, y0 + 120), 1.0, 12)  # a shadow's edge
        for i in range(8):
            cv2.circle(alpha, (x0 + 40 + 20 * i, y0 + 200), 1, 1.0, -1)
    assert main.preprocess_frame(frame_with(draw)).model_input is None


def test_pieces_of_a_broken_stroke_are_kept():
    def five(alpha, x0, y0, side, gap=True):
        cv2.line(alpha, (x0 + 90, y0 + 50), (x0 + 160, y0 + 50), 1.0, 9)       # the bar
        stem_top = y0 + 62 if gap else y0 + 50
        cv2.line(alpha, (x0 + 90, stem_top), (x0 + 85, y0 + 110), 1.0, 9)
        cv2.ellipse(alpha, (x0 + 115, y0 + 145), (40, 38), 0, 200, 520, 1.0, 9)
    broken = main.preprocess_frame(frame_with(five)).model_input
    whole = main.preprocess_frame(frame_with(lambda *a: five(*a, gap=False))).model_input
    assert broken is not None
    assert broken[:8].sum() > 0.5 * whole[:8].sum()  # the bar at the top survived


def test_a_4_in_two_strokes_is_one_digit_when_its_bolder_piece_is_the_smaller():
    def four(alpha, x0, y0, side):
        cv2.line(alpha, (x0 + 95, y0 + 60), (x0 + 75, y0 + 125), 1.0, 14)    # bold open top ...
        cv2.line(alpha, (x0 + 75, y0 + 125), (x0 + 130, y0 + 125), 1.0, 14)  # ... and bar
        cv2.line(alpha, (x0 + 150, y0 + 50), (x0 + 150, y0 + 190), 1.0, 4)   # thin stem, 13 px off
    mask = main.select_digit(main.preprocess_frame(frame_with(four)).ink)
    assert mask is not None and mask.shape[0] >= 135 and mask.shape[1] >= 80


def test_a_thin_0_broken_into_short_pieces_is_read_whole():
    def broken_zero(alpha, x0, y0, side):
        for start in (0, 95, 185, 275):          # four arcs, gaps of ~10 px between them
            cv2.ellipse(alpha, (x0 + 120, y0 + 120), (32, 40), 0, start, start + 65, 1.0, 1)
    mask = main.select_digit(main.preprocess_frame(frame_with(broken_zero)).ink)
    assert mask is not None and mask.shape[0] >= 75 and mask.shape[1] >= 60


def test_a_thin_0_held_far_away_is_read_whole_from_its_short_pieces():
    """Held far off, a ballpoint's stroke is a pixel wide and fades apart into pieces a
    twentieth of the ROI long, with as little ink as a speck: their length keeps them."""
    def small_broken_zero(alpha, x0, y0, side):
        for start in range(0, 360, 30):          # twelve arcs ~12 px long, ~4 px apart
            cv2.ellipse(alpha, (x0 + 120, y0 + 120), (26, 36), 0, start, start + 22, 1.0, 1)
    mask = main.select_digit(main.preprocess_frame(frame_with(small_broken_zero)).ink)
    assert mask is not None and mask.shape[0] >= 65 and mask.shape[1] >= 45


def test_the_digit_over_the_centre_wins_over_a_bigger_edge_off_to_the_side():
    def digit_and_edge(alpha, x0, y0, side):
        cv2.line(alpha, (x0 + 120, y0 + 80), (x0 + 120, y0 + 160), 1.0, 2)    # a thin 1
        cv2.rectangle(alpha, (x0 + 12, y0 + 20), (x0 + 30, y0 + 220), 1.0, 4)  # a sheet's edge
    mask = main.select_digit(main.preprocess_frame(frame_with(digit_and_edge)).ink)
    assert mask is not None and 75 <= mask.shape[0] <= 90


def test_a_thin_digit_is_not_joined_to_a_shadow_beside_it():
    def four_by_a_shadow(alpha, x0, y0, side):
        cv2.line(alpha, (x0 + 110, y0 + 75), (x0 + 100, y0 + 120), 1.0, 2)
        cv2.line(alpha, (x0 + 100, y0 + 120), (x0 + 140, y0 + 120), 1.0, 2)
        cv2.line(alpha, (x0 + 135, y0 + 75), (x0 + 135, y0 + 165), 1.0, 2)
        alpha[y0 + 100:y0 + 225, x0 + 45:x0 + 95] = 1.0       # a sharp shadow's edge, close by
        alpha[y0 + 175:y0 + 225, x0 + 45:x0 + 190] = 1.0
    mask = main.select_digit(main.preprocess_frame(frame_with(four_by_a_shadow)).ink)
    assert mask is not None and mask.shape[1] <= 60 and mask.shape[0] <= 110


def test_thin_pen_strokes_are_thickened_towards_mnist():
    thin = main.preprocess_frame(frame_with(lambda *a: draw_stroke_digit(*a, thickness=2)))
    thick = main.preprocess_frame(frame_with(lambda *a: draw_stroke_digit(*a, thickness=12)))
    ratio = thin.model_input.sum() / thick.model_input.sum()
    assert 0.6 < ratio < 1.5


@pytest.mark.parametrize("frame", [
    np.zeros((480, 640), np.uint8),
    np.full((480, 640, 3), 255, np.uint8),
    np.full((480, 640, 4), 200, np.uint8),
    (np.random.default_rng(0).random((480, 640)) * 65535).astype(np.uint16),
    np.random.default_rng(1).integers(0, 256, (480, 640, 3), dtype=np.uint8),
    np.zeros((5, 7, 3), np.uint8),
    np.zeros((1, 1), np.uint8),
])
def test_odd_frames_give_no_digit_or_a_valid_input(frame):
    result = main.preprocess_frame(frame)
    assert result.model_input is None or (result.model_input.shape == (28, 28) and
                                          result.model_input.dtype == np.float32)


def test_gray_conversion_handles_every_frame_type():
    bgr = np.full((4, 4, 3), 100, np.uint8)
    assert main.to_gray_uint8(bgr).shape == (4, 4)
    assert main.to_gray_uint8(np.full((4, 4, 4), 100, np.uint8))[0, 0] == 100
    assert main.to_gray_uint8(np.full((4, 4), 65535, np.uint16))[0, 0] == 255
    assert main.to_gray_uint8(np.full((4, 4), 0.5, np.float32))[0, 0] == 127


def test_same_digit_tells_a_jittered_digit_from_another():
    one = np.zeros((28, 28), np.float32)
    one[4:24, 12:16] = 1
    # inputs are centred by mass, so a shaky hand moves them by a fraction of a pixel
    shifted = cv2.warpAffine(one, np.float32([[1, 0, 0.5], [0, 1, 0.5]]), (28, 28))
    zero = cv2.ellipse(np.zeros((28, 28), np.float32), (14, 14), (6, 10), 0, 0, 360, 1.0, 2)
    assert main.same_digit(one, shifted) and not main.same_digit(one, zero)
