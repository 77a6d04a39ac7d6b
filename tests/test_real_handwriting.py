"""Real handwriting: other people's photos, numbers as real hands write them, and one test
on arrays per way a row of real digits used to be misread."""

import cv2
import numpy as np
import pytest

import main
import real_photos as rp
import synthetic_camera as sc
from conftest import IN_CI, read_right, run_main

# ----- real photos of other people's digits (../shared/real-photos) ---------------------


DIM_ROOM_GRAIN = 12   # sensor noise (standard deviation, gray levels) of a webcam in a dim room
OUT_OF_FOCUS = 1.5    # a webcam's blur (standard deviation, pixels) with the paper held too close
FAINT_INK = 0.25      # the share of the ink's darkness a hard pencil or a dry pen leaves
MOTION_SMEAR = 9      # pixels the paper moves sideways while the webcam exposes one frame
CHEAP_MJPG = 50       # JPEG quality of a cheap webcam's MJPG in a dim room (75-90 in good light)


@pytest.fixture(scope="module")
def real_answers(tmp_path_factory):
    """Every real photo framed as a camera frame, read by the headless app, both modes."""
    if not rp.available():
        message = f"real photos not found at {rp.FOLDER} (set REAL_PHOTOS)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    folder, answers = tmp_path_factory.mktemp("real"), {}
    framings = {"single": ("single", {}), "number": ("number", {}),
                "single at 0.7x": ("single", {"scale_by": 0.7}),
                "single at half size": ("single", {"scale_by": 0.5}),
                "number at half size": ("number", {"scale_by": 0.5}),
                "number tilted 10 degrees": ("number", {"tilt": 10}),
                "number tilted -10 degrees": ("number", {"tilt": -10}),
                "number tilted 15 degrees": ("number", {"tilt": 15}),
                "number tilted -15 degrees": ("number", {"tilt": -15}),
                "number tilted 20 degrees": ("number", {"tilt": 20}),
                "number tilted -20 degrees": ("number", {"tilt": -20}),
                "single in a dim room": ("single", {"grain": DIM_ROOM_GRAIN}),
                "number in a dim room": ("number", {"grain": DIM_ROOM_GRAIN}),
                "single out of focus": ("single", {"blur": OUT_OF_FOCUS}),
                "single in faint ink": ("single", {"fade": FAINT_INK}),
                "number in faint ink": ("number", {"fade": FAINT_INK}),
                "single smeared by motion": ("single", {"motion": MOTION_SMEAR}),
                "number as MJPG": ("number", {"jpeg": CHEAP_MJPG}),
                "number at 0.7x as MJPG": ("number", {"scale_by": 0.7, "jpeg": 70})}
    for name, (kind, framing) in framings.items():
        entries = rp.items(kind)
        video, out = folder / f"{len(answers)}.avi", folder / f"{len(answers)}.jsonl"
        frames = rp.write_video(video, entries, **framing)
        mode = ("--multi",) if kind == "number" else ()
        result = run_main("--source", video, "--headless", "--no-eval", "--predictions", out, *mode)
        assert result.returncode == 0, result.stderr
        records = {r["frame"]: r for r in sc.read_predictions(out)}
        answers[name] = (entries, [rp.answer_of(records[i], kind) for i in frames])
    return answers


def exact_answers(real_answers, kind):
    """How many of the kind's items were read exactly, printing the per-writer table."""
    entries, answers = real_answers[kind]
    table = "\n".join(rp.per_writer_table(entries, answers))
    print(table)
    return sum(a == e["label"] for a, e in zip(answers, entries)), table


def test_real_single_digits_from_six_writers(real_answers):
    """59 of 60 today, as issue 10 asks (58 with 800 hidden units, 57 before the model
    learnt closed-top 4s): a crossed 7 with a high bar and a long serif reads as 9, as
    MNIST's own nearest neighbours read it. The recipe trained with seeds 0-7 reads 59, 59,
    59, 59, 59, 58, 58 and 59 (800 units: 59, 58, 58, 58, 59, 58, 57, 59); the misses
    beside the 7 are a bold 9 with a curled tail read as 3 and a closed-top 4 read as 9."""
    right, table = exact_answers(real_answers, "single")
    assert right >= 59, f"{right} of 60 right\n{table}"


def test_real_single_digits_held_further_away(real_answers):
    """At 0.7x the size more of each photo is in the ROI: a sheet's edge, the shadow beside
    a thin digit. 59 of 60 (58 with 800 hidden units; 56 when the digit with the most ink
    was read, not the one over the centre): the same misread as at full size."""
    right, table = exact_answers(real_answers, "single at 0.7x")
    assert right >= 59, f"{right} of 60 right\n{table}"


def test_real_single_digits_held_twice_as_far(real_answers):
    """At half the size a ballpoint's stroke is a pixel wide and fades apart into short
    pieces, kept when they are a twenty-fifth of the ROI long, however little ink they
    hold (55 when they had to be twice as long). 57 of 60 (56 with 800 hidden units). The
    misses: a photo's sharp shadow edge reads as a 6 over a broken thin 4, a thin 0 still
    breaks, and the crossed 7 of full size."""
    right, table = exact_answers(real_answers, "single at half size")
    assert right >= 57, f"{right} of 60 right\n{table}"


def test_real_number_rows_from_three_writers(real_answers):
    """18 of 19 today (issue 10 asks for 17): a 9 with a tiny loop on a long tail reads as 1."""
    exact, table = exact_answers(real_answers, "number")
    assert exact >= 17, f"{exact} of 19 exact\n{table}"


def test_real_number_rows_held_twice_as_far(real_answers):
    """At half size a writer's small 0s are 8-10 px tall: 18 of 19 (17 while ink under a
    twentieth of the band was a speck, whatever its pen)."""
    exact, table = exact_answers(real_answers, "number at half size")
    assert exact >= 18, f"{exact} of 19 exact\n{table}"


@pytest.mark.parametrize("tilt", [10, -10])
def test_real_number_rows_on_paper_held_askew(real_answers, tilt):
    """The line's middle is followed along the row and its digits turned upright: 18 of 19
    at 10 and -10 degrees (17 and 16 with 800 hidden units, whose 0 in 20170708 read as 1;
    15 and 15 when the middle was one height for the whole row)."""
    exact, table = exact_answers(real_answers, f"number tilted {tilt} degrees")
    assert exact >= 18, f"{exact} of 19 exact\n{table}"


@pytest.mark.parametrize("tilt, floor", [(15, 18), (-15, 18), (20, 16), (-20, 16)])
def test_real_number_rows_held_further_askew(real_answers, tilt, floor):
    """At 15 degrees a long row leaves the band at its ends, and the band's edge cut its end
    digits off (7 and 10 of 19 exact; 4 and 4 at 20 degrees). Ink that crosses the band's
    edge on the row's own line is read whole from 0.3 band heights above and below: 17 and
    15, then 16 once two digits wholly in the band could tell the row's slope (a short row
    of four has no more); at 20 degrees 14 and 12, then 15 and 16; at -20, 15 since JPEG's
    colour is smoothed (a thin blue 7's long tail on yellow paper breaks at the band's edge).
    18, 18, 16 and 16 today (18, 17, 16 and 15 before the row's typical digit width was
    taken at full height; 17, 16, 15 and 15 with 800 hidden units)."""
    exact, table = exact_answers(real_answers, f"number tilted {tilt} degrees")
    assert exact >= floor, f"{exact} of 19 exact\n{table}"


def test_real_digits_in_a_dim_room(real_answers):
    """A webcam in a dim room makes a grainy picture: single pixels pass for ink, and noise
    crosses thin strokes. A grainy picture is smoothed before it is read: 59 of 60 single
    digits and 18 of 19 rows (58 and 17 with 800 hidden units; 45 and 5 when it was read as
    it came)."""
    right, table = exact_answers(real_answers, "single in a dim room")
    assert right >= 59, f"{right} of 60 right\n{table}"
    exact, table = exact_answers(real_answers, "number in a dim room")
    assert exact >= 18, f"{exact} of 19 exact\n{table}"


def test_real_single_digits_out_of_focus(real_answers):
    """Out of focus, a thin pen's stroke fades below the threshold in places and breaks
    apart; faint ink next to a thin pen's clear ink counts too, which joins it again: 58 of
    60 (57 with 800 hidden units; 55 when only the threshold decided). A blurred sheet's
    shadow beside a thin 8 passes for a piece of it, since JPEG's colour is smoothed."""
    right, table = exact_answers(real_answers, "single out of focus")
    assert right >= 58, f"{right} of 60 right\n{table}"


def test_real_digits_in_faint_ink(real_answers):
    """Ink a quarter as dark (a hard pencil, a pen running dry) lies above 80 % of the
    paper's light, the limit that keeps blank paper blank; on paper as even as these it may
    lie up to 90 %: 57 of 60 single digits and 18 of 19 rows (55 and 18 with 800 hidden
    units; 27 and 1 with the limit)."""
    right, table = exact_answers(real_answers, "single in faint ink")
    assert right >= 57, f"{right} of 60 right\n{table}"
    exact, table = exact_answers(real_answers, "number in faint ink")
    assert exact >= 18, f"{exact} of 19 exact\n{table}"


def test_real_single_digits_smeared_by_motion(real_answers):
    """Paper moving 9 px during the exposure spreads a thin upright stroke ninefold and
    fades it as much: 56 of 60 (54 with 800 hidden units; 46 while ink had to be 80 % of
    the paper's light or darker)."""
    right, table = exact_answers(real_answers, "single smeared by motion")
    assert right >= 56, f"{right} of 60 right\n{table}"


def test_real_number_rows_sent_as_mjpg(real_answers):
    """JPEG keeps colour at half resolution in 8x8 blocks; around blue and red strokes it
    rings, dark in one channel, and the specks passed for coloured ink (the row on yellow
    paper fell apart). The picture's colour is smoothed by a 5 px median first: at quality
    50, 18 of 19 rows (17 with 800 hidden units, 16 before); at 0.7x and quality 70, 18
    (15 before)."""
    exact, table = exact_answers(real_answers, "number as MJPG")
    assert exact >= 18, f"{exact} of 19 exact\n{table}"
    exact, table = exact_answers(real_answers, "number at 0.7x as MJPG")
    assert exact >= 18, f"{exact} of 19 exact\n{table}"


# ----- numbers written as real hands write them (generated) ------------------------------

HARD_VIDEO_SEEDS = range(11, 21)   # the first is the issue's own video


@pytest.fixture(scope="module")
def hard_videos(mnist, mnist_npz, committed_model, tmp_path_factory):
    """Hard number videos, one per seed: {seed: (video, its numbers frame by frame)}.

    Heights from half the line to all of it, natural widths, thin and faint strokes, blue
    and red ink, touching to wide spacing, rows above and below, ruled and squared paper.
    The rows' digits are MNIST test digits the model reads right as clean images, so that
    they measure the camera and the row, not the model's MNIST errors (tested apart)."""
    _, (x_test, y_test) = mnist
    readable = read_right(committed_model, x_test, y_test)
    folder, videos = tmp_path_factory.mktemp("hard"), {}
    for seed in HARD_VIDEO_SEEDS:
        video = folder / f"hard{seed}.avi"
        videos[seed] = video, sc.hard_number_video(video, mnist_npz, count=100, seed=seed, readable=readable)
    return videos


def test_hard_generated_numbers_are_read_exactly(hard_videos, tmp_path):
    """The issue's own video, through the app."""
    video, numbers = hard_videos[HARD_VIDEO_SEEDS[0]]
    out = tmp_path / "hard.jsonl"
    result = run_main("--source", video, "--headless", "--multi", "--no-eval", "--predictions", out)
    assert result.returncode == 0, result.stderr
    read = [r["number"] for r in sc.read_predictions(out)]
    exact = np.mean([r == n for r, n in zip(read, numbers)])
    misses = [(n, r) for r, n in zip(read, numbers) if r != n]
    # 0.96 today (0.955 before a speck by one digit joined it; 0.97 with 800 hidden units,
    # on its own video: each model's video takes the digits it reads right, and the wider
    # one reads 23 more, the marginal ones). The misses: a 4 in two strokes read as 11
    # (three frames), two touching 4s read as 6 or 91, a 9 read as 7, a 1 read as 6, a 7
    # lost.
    assert len(read) == len(numbers) and exact >= 0.95, (exact, misses)


def test_hard_generated_numbers_over_ten_videos(hard_videos, committed_model):
    """All ten videos, read frame by frame through the pipeline the app runs: the rate in
    general, which one video of 100 numbers tells only to a few points (one seed's video
    reads 91.5 to 96.5 %). 0.946 today, short of issue 10's 95 %: this holds what has been
    reached (0.9415 before a short digit touching a tall one was cut from it with less
    doubt, 0.9385 before a speck by one digit joined it, 0.935 before the line's digit
    width was taken at full height; 0.941 with 800 hidden units on its own videos; on
    videos of the digits both read right, 0.936 against 0.933)."""
    rates = {}
    for seed, (video, numbers) in hard_videos.items():
        capture = cv2.VideoCapture(str(video))
        read = [read_number(committed_model, capture.read()[1]) for _ in numbers]
        capture.release()
        rates[seed] = np.mean([r == n for r, n in zip(read, numbers)])
    print({seed: round(float(rate), 3) for seed, rate in rates.items()})
    assert np.mean(list(rates.values())) >= 0.94, rates


# ----- one test on arrays per kind of failure --------------------------------------------

BAND = main.number_band((480, 640))


GLYPH_SETS = 12


@pytest.fixture(scope="module")
def glyph_sets(mnist, committed_model):
    """GLYPH_SETS hands: the k-th MNIST test digit of each class that the model reads right
    and surely, as ink crops. Which digits these are depends on the model, so a rule that
    one hand passes by luck is measured over all of them."""
    _, (x_test, y_test) = mnist
    images, labels = x_test[:3000], y_test[:3000]
    sure = read_right(committed_model, images, labels, least=0.999)
    sets = [{} for _ in range(GLYPH_SETS)]
    for digit in range(10):
        for glyphs, image in zip(sets, images[sure & (labels == digit)]):
            glyphs[digit] = main.crop_to_ink(np.where(image > 100, 255, 0).astype(np.uint8))
    return sets


@pytest.fixture(scope="module")
def glyphs(glyph_sets):
    """One hand: the first MNIST test digit per class that the model reads right and surely."""
    return glyph_sets[0]


def row(glyphs, parts, baseline=135, beyond=0):
    """Ink of the band and `beyond` pixels above and below it: (digit or mask, height, gap
    before it) written on one baseline, which may lie outside the band (another row)."""
    margin = 150
    ink = np.zeros((BAND[3] + 2 * margin, BAND[2]), np.uint8)
    x = 150
    for glyph, height, gap in parts:
        mask = glyphs[glyph] if isinstance(glyph, int) else glyph
        width = max(1, round(mask.shape[1] * height / mask.shape[0]))
        scaled = cv2.threshold(cv2.resize(mask, (width, height)), 127, 255, cv2.THRESH_BINARY)[1]
        x += gap
        region = ink[margin + baseline - height:margin + baseline, x:x + width]
        np.maximum(region, scaled, out=region)
        x += width
    return ink[margin - beyond:margin + BAND[3] + beyond]


def camera_frame(ink, lines=None):
    """A 640x480 gray-paper frame with the band's ink (and any above and below it) written
    on it in dark pen; `lines` draws printed lines on the frame before the ink."""
    frame = np.full((480, 640), 205, np.uint8)
    if lines:
        lines(frame)
    x, y, w, h = BAND
    beyond = (ink.shape[0] - h) // 2
    frame[y - beyond:y + h + beyond, x:x + w][ink > 0] = 45
    return as_camera_sees(frame)


def as_camera_sees(frame):
    """A drawn gray frame as a camera sends it: a little blurred, in BGR."""
    return cv2.cvtColor(cv2.GaussianBlur(frame, (3, 3), 0), cv2.COLOR_GRAY2BGR)


def read_number(model, frame):
    _, answer = main.read_frame(frame, main.DigitReader(model, smooth=1), roi_fraction=0.5,
                                threshold=0, number=True)
    return answer.text


def reads_over_hands(glyph_sets, model, frame_of):
    """The number read in `frame_of(glyphs)` for each hand: a rule one hand passes by luck
    is measured over all of them."""
    return [read_number(model, frame_of(glyphs)) for glyphs in glyph_sets]


def widened(glyph, widening):
    """A glyph drawn `widening` times as wide as it is tall."""
    return cv2.resize(glyph, (int(glyph.shape[0] * widening), glyph.shape[0]))


def test_a_short_0_between_tall_digits_is_kept(glyphs, committed_model):
    ink = row(glyphs, [(1, 90, 0), (0, 36, 25), (7, 90, 25)])     # the 0 at 40% of the line
    assert read_number(committed_model, camera_frame(ink)) == "107"


def test_a_short_0_in_a_row_held_far_away_is_kept(glyphs, committed_model):
    """A row a seventh of the band tall, its 0 at 40 % of the row: 9 px, which is no speck
    for this pen (the code before dropped anything under a twentieth of the band)."""
    ink = row(glyphs, [(1, 24, 0), (3, 24, 5), (0, 9, 5), (5, 24, 5)])
    assert read_number(committed_model, camera_frame(ink)) == "1305"


@pytest.mark.parametrize("height", [20, 24])
def test_a_small_0_in_a_fine_pen_beside_bold_digits_is_kept(glyphs, committed_model, height):
    """No bigger than a few of the bold marker's stroke widths, but drawn: a ring many of
    its own fine strokes across is no dot (the code before dropped it as a speck)."""
    ink = cv2.dilate(row(glyphs, [(3, 80, 0), (3, 80, 20), (7, 80, 20)]), np.ones((5, 5), np.uint8))
    cv2.ellipse(ink, (430, 135 - height // 2), (height * 3 // 8, height // 2), 0, 0, 360, 255, 2)
    assert read_number(committed_model, camera_frame(ink)) == "3370"


def test_a_one_pixel_wide_1_is_kept(glyphs, committed_model):
    ink = row(glyphs, [(4, 90, 0), (5, 90, 70)])
    four_right = 150 + round(glyphs[4].shape[1] * 90 / glyphs[4].shape[0])
    cv2.line(ink, (four_right + 35, 135 - 88), (four_right + 35, 134), 255, 1)
    assert read_number(committed_model, camera_frame(ink)) == "415"


@pytest.mark.parametrize("gap", [3, 4])
def test_a_short_fine_1_broken_once_beside_marker_digits_is_kept(glyph_sets, committed_model, gap):
    """A 1 at half the line in a 2 px pen, its stroke broken once by faint ink, after three
    marker digits: each half is no bigger than a speck of the marker's ink, but together
    they are one stroke. Over 12 hands, 12 of 12 today; the code before, which never
    joined two specks, read 780 for all of them."""
    def frame_of(glyphs):
        ink = row(glyphs, [(bold(glyphs[7]), 90, 0), (bold(glyphs[8]), 90, 25), (bold(glyphs[0]), 90, 25)])
        x = np.flatnonzero(ink.any(axis=0))[-1] + 35
        top, bottom = 135 - 44, 134
        middle = (top + bottom) // 2
        cv2.line(ink, (x + 3, top), (x + 1, middle - gap // 2 - 1), 255, 2)
        cv2.line(ink, (x + 1, middle + (gap + 1) // 2), (x, bottom), 255, 2)
        return camera_frame(ink)
    reads = reads_over_hands(glyph_sets, committed_model, frame_of)
    assert reads.count("7801") == len(glyph_sets), reads


def bold(glyph):
    """A glyph written with a marker: at four times its size, its strokes widened."""
    big = cv2.resize(glyph, None, fx=4, fy=4, interpolation=cv2.INTER_NEAREST)
    return cv2.dilate(big, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5)))


@pytest.mark.parametrize("gap, height", [(5, 50), (8, 60)])
def test_a_thin_7_among_bold_digits_keeps_its_loose_bar(glyphs, committed_model, gap, height):
    """Beside marker digits, a ballpoint 7's bar come loose is no bigger than a speck of the
    marker's ink; it still completes the 7 stacked on it (the code before read 8012)."""
    seven = np.zeros((height, 34), np.uint8)
    cv2.line(seven, (2, 2), (31, 2), 255, 3)
    cv2.line(seven, (30, 4 + gap), (12, height - 3), 255, 3)
    ink = row(glyphs, [(bold(glyphs[8]), 90, 0), (bold(glyphs[0]), 90, 20), (seven, height, 20),
                       (bold(glyphs[2]), 90, 20)])
    assert read_number(committed_model, camera_frame(ink)) == "8072"


def test_a_dashed_line_beside_a_number_is_no_1(glyphs, committed_model):
    """A printed dashed line's dashes are stacked specks: together they are still no digit."""
    ink = row(glyphs, [(bold(glyphs[1]), 90, 0), (bold(glyphs[0]), 90, 20), (bold(glyphs[1]), 90, 20)])
    right = np.flatnonzero(ink.any(axis=0))[-1]
    for top in range(40, 150, 22):
        cv2.line(ink, (right + 30, top), (right + 30, top + 10), 255, 3)
    assert read_number(committed_model, camera_frame(ink)) == "101"


def test_a_wide_0_beside_a_narrow_1_is_not_cut(glyphs, committed_model):
    ink = row(glyphs, [(1, 90, 0), (widened(glyphs[0], 1.3), 80, 25), (2, 90, 25)])   # a 0 1.3x as wide as tall
    assert read_number(committed_model, camera_frame(ink)) == "102"


@pytest.mark.parametrize("digit, widening, floor", [(0, 1.9, 11), (4, 1.5, 12), (2, 2.1, 9), (6, 1.5, 9)])
def test_a_digit_written_twice_as_wide_as_tall_is_not_cut(glyph_sets, committed_model, digit,
                                                          widening, floor):
    """Cutting it would leave a part that is itself as wide as two digits: a cut's parts are
    held to a digit's width as any digit is (the code before read 1421, 1211, 1221, 1521 with
    the first hand). Over 12 hands, since how well a squashed digit reads depends on the
    hand: 11, 12, 9 and 9 of 12 today (12, 12, 8 and 9 with 800 hidden units). A 6 twice as
    wide as tall reads whole for 1 of 12 (3 with 800 units, whose first hand was one)."""
    reads = reads_over_hands(glyph_sets, committed_model, lambda glyphs: camera_frame(
        row(glyphs, [(1, 90, 0), (widened(glyphs[digit], widening), 70, 25), (1, 90, 25)])))
    assert sum(read == f"1{digit}1" for read in reads) >= floor, reads


@pytest.mark.parametrize("widening, floor", [(1.45, 12), (1.8, 10)])
def test_a_wide_0_among_short_digits_is_not_cut(glyph_sets, committed_model, widening, floor):
    """Short digits are narrow for their size, and say nothing of how wide this row's
    digits are at full height: a wide 0 among them is still one digit. Over 12 hands: 12
    and 11 of 12 today; the code before, which took the digits' own widths as the line's,
    cut 2 and 10 of them into 62, 67, 82 or 87."""
    reads = reads_over_hands(glyph_sets, committed_model, lambda glyphs: camera_frame(
        row(glyphs, [(7, 40, 0), (5, 70, 15), (widened(glyphs[0], widening), 70, 20), (1, 36, 20),
                     (0, 36, 15), (7, 36, 15)])))
    assert sum(read == "750107" for read in reads) >= floor, reads


def crosses_two_strokes(mask):
    """The columns of a mask that cross ink twice or more."""
    starts = np.diff(np.pad(mask > 0, ((1, 0), (0, 0))).astype(np.int8), axis=0) == 1
    return np.count_nonzero(starts, axis=0) >= 2


def test_a_cut_never_leaves_a_2s_curled_tail_as_a_digit(glyphs):
    """A 2 whose base runs on and curls up is as wide as two digits; a cut may not leave its
    tail, one stroke that no column crosses twice, as a digit of its own."""
    two = glyphs[2]
    h, w = two.shape
    pen = max(2, round(main.stroke_width(two)))
    tailed = np.zeros((h, w + int(0.7 * h) + pen), np.uint8)
    tailed[:, :w] = two
    ys, xs = np.nonzero(two[int(0.8 * h):])
    end = (int(xs.max()), int(0.8 * h) + int(ys[xs.argmax()]))     # where its base ends
    cv2.ellipse(tailed, (end[0], end[1] - int(0.6 * h)), (int(0.7 * h), int(0.6 * h)), 0, 0, 90, 255, pen)
    _, options, _ = main.segment_number(row(glyphs, [(3, 90, 0), (tailed, 90, 25), (6, 90, 25)]))
    parts = [mask for option in options if len(option.digits) > 1 for _, mask in option.digits]
    lone_strokes = [m.shape for m in parts if m.shape[1] >= 0.6 * m.shape[0]
                    and np.mean(crosses_two_strokes(m)) < 0.1]
    assert not lone_strokes          # the code before offered four cuts, each leaving the tail


def test_touching_digits_are_separated(glyphs, committed_model):
    ink = row(glyphs, [(3, 90, 0), (5, 90, 20), (7, 90, -2)])      # the 5 and the 7 touch
    count, options, _ = main.segment_number(ink)
    assert count == 2 and any(len(o.digits) == 2 for o in options)  # one blob, cut in two
    assert read_number(committed_model, camera_frame(ink)) == "357"


def test_a_short_digit_touching_a_tall_one_is_kept(glyph_sets, committed_model):
    """A short 6 written against a tall 2, after it and before it: the blob reads as the 2
    alone, surely, and a cut's usual doubt kept it whole, losing the 6. Over 12 hands, 18
    of 24 today; 9 of 24 with the cut's usual doubt."""
    after = reads_over_hands(glyph_sets, committed_model, lambda glyphs: camera_frame(
        row(glyphs, [(1, 90, 0), (2, 90, 25), (6, 50, -2), (5, 90, 25)])))
    before = reads_over_hands(glyph_sets, committed_model, lambda glyphs: camera_frame(
        row(glyphs, [(1, 90, 0), (6, 50, 25), (2, 90, -2), (5, 90, 25)])))
    right = after.count("1265") + before.count("1625")
    assert right >= 17, (after, before)


def test_a_number_that_runs_past_the_band_is_not_read_short(glyphs, committed_model):
    """Held too close, a long number runs past the band's sides: its first and last digits
    are cut, and reading the rest would give a wrong number with confidence. None is read,
    and the window says to hold it further away; a sheet's edge at the side is no digit."""
    ink = np.roll(row(glyphs, [(2, 90, 0), (3, 90, 20), (5, 90, 20), (7, 90, 20)]), -180, axis=1)
    ink[:, -180:] = 0                                              # the 2 cut by the left side
    assert ink[:, 0].any() and main.segment_number(ink)[2]
    _, answer = main.read_frame(camera_frame(ink), main.DigitReader(committed_model), roi_fraction=0.5,
                                threshold=0, number=True)
    assert answer.text == "" and answer.fields()["past_band"] is True
    canvas = main.draw_overlay(camera_frame(ink), main.preprocess_number(camera_frame(ink)), answer)
    assert canvas.shape == (480, 640, 3)
    with_edge = row(glyphs, [(3, 90, 0), (5, 90, 20), (7, 90, 20)])
    with_edge[:, :2] = 255                                         # a sheet's edge, top to bottom
    assert read_number(committed_model, camera_frame(with_edge)) == "357"


def test_specks_a_printed_line_leaves_at_the_bands_sides_do_not_stop_the_number(glyphs):
    """A ruled line across the row is removed, but not always to its last pixels: the dashes
    it leaves on the line at the band's sides are specks, not a number running on past the
    band (the code before read nothing, as if the number were cut)."""
    ink = row(glyphs, [(1, 90, 0), (9, 90, 25), (8, 60, 25), (2, 90, 25)])
    line = 135 - 30
    for x in (0, 6, 14, ink.shape[1] - 20, ink.shape[1] - 9, ink.shape[1] - 3):
        ink[line, x:x + 3] = 255
    count, options, past_band = main.segment_number(ink)
    assert not past_band and count == 4 and options


def test_a_blob_as_wide_as_three_digits_may_be_cut_in_three():
    ink = np.zeros((BAND[3], BAND[2]), np.uint8)
    cv2.line(ink, (170, 50), (170, 140), 255, 9)                       # a 1, then
    for k in range(3):                                                  # three 0s that touch
        cv2.ellipse(ink, (268 + k * 61, 95), (28, 45), 0, 0, 360, 255, 9)
    count, options, _ = main.segment_number(ink)
    assert count == 2 and any(len(o.digits) == 3 for o in options if o.start == 1)


def test_a_5_with_its_bar_come_loose_is_one_digit(glyphs, committed_model):
    five = glyphs[5].copy()
    ys = np.flatnonzero(np.count_nonzero(five, axis=1))
    bar_bottom = ys[0] + max(2, (ys[-1] - ys[0]) // 6)
    five[bar_bottom:bar_bottom + max(2, five.shape[0] // 12)] = 0   # a gap under the bar
    ink = row(glyphs, [(2, 90, 0), (five, 90, 25)])
    labels, components = main.ink_components(ink)
    assert len(components) >= 3                                    # the 2, the bar, the body
    assert read_number(committed_model, camera_frame(ink)) == "25"


@pytest.mark.parametrize("gap", [4, 8])
def test_a_7_with_its_bar_come_loose_beside_the_stem_is_one_digit(glyphs, committed_model, gap):
    """The bar ends `gap` pixels short of the stem, in no column of it (a faint join that
    broke): it belongs to the digit whose top it ends beside (before: "315")."""
    ink = row(glyphs, [(3, 90, 0), (5, 90, 110)])
    cv2.line(ink, (260, 50), (297 - gap, 50), 255, 7)
    cv2.line(ink, (304, 47), (298, 135), 255, 7)
    assert len(main.ink_components(ink)[1]) == 4
    assert read_number(committed_model, camera_frame(ink)) == "375"


def fine_pen_9_with_its_loop_skipped(height, pen=2):
    """A 9 in a fine pen that skipped twice on the left of its loop: a short arc comes loose
    there, no bigger than a speck of a marker's ink."""
    r = int(0.3 * height) - 2
    centre = (r + 6, r + 4)
    mask = np.zeros((height + 8, 2 * r + 12), np.uint8)
    cv2.ellipse(mask, centre, (r, r), 0, 218, 492, 255, pen)          # the loop, but for its left
    cv2.ellipse(mask, centre, (r, r), 0, 150, 200, 255, pen)          # the arc come loose
    cv2.line(mask, (centre[0] + r, centre[1]), (centre[0] + r - 4, height + 4), 255, pen)
    return main.crop_to_ink(mask)


@pytest.mark.parametrize("height", [60, 70])
def test_a_fine_9_whose_loop_skipped_beside_marker_digits_keeps_its_loose_arc(
        glyph_sets, committed_model, height):
    """The loose arc lies by the 9 and by no other digit, so it is a piece of the 9, though
    a speck of the marker's size. Over 12 hands, 12 of 12 today; the code before, which
    dropped every speck no stroke was stacked on, read "375" for all of them."""
    nine = fine_pen_9_with_its_loop_skipped(height)
    assert cv2.connectedComponents(nine)[0] == 3        # the background, the 9 and its arc
    reads = reads_over_hands(glyph_sets, committed_model, lambda glyphs: camera_frame(row(
        glyphs, [(bold(glyphs[3]), 90, 0), (nine, height, 25), (bold(glyphs[5]), 90, 25)])))
    assert reads.count("395") == len(glyph_sets), reads


def test_a_printed_lines_remains_beside_a_digit_are_not_joined_to_it():
    """Thinner than the pen, they are not a digit's bar come loose, however near its top."""
    size, digit = main.LineSize(height=76, width=43, middle=160), main.Piece([], (446, 127, 60, 74))
    remains, bar = main.Piece([], (508, 134, 37, 2)), main.Piece([], (508, 134, 37, 6))
    assert main.is_bar(remains, size) and main.is_bar(bar, size)
    assert main.bar_owner(remains, [digit], pen=6.0) is None
    assert main.bar_owner(bar, [digit], pen=6.0) == 0


def test_rows_above_and_below_the_band_are_not_read(glyphs, committed_model):
    """The rows of the sheet above and below the number's reach into the band."""
    ink = row(glyphs, [(3, 80, 0), (8, 80, 25)], baseline=130, beyond=140)
    above = row(glyphs, [(4, 80, 0), (1, 80, 30), (2, 80, 30)], baseline=40, beyond=140)
    below = row(glyphs, [(6, 80, 60), (9, 80, 30)], baseline=230, beyond=140)
    assert read_number(committed_model, camera_frame(ink | above | below)) == "38"


def askew(glyphs, digits, angle):
    """A row turned `angle` degrees about its middle, and the sheet's rows above and below
    it, turned with it: ink of the band and 140 pixels above and below."""
    ink = row(glyphs, digits, baseline=141, beyond=140)
    others = row(glyphs, digits, baseline=141 - 160, beyond=140) | row(glyphs, digits, baseline=141 + 160, beyond=140)
    h, w = ink.shape
    columns = np.flatnonzero(ink.any(axis=0))
    turn = cv2.getRotationMatrix2D(((columns[0] + columns[-1]) / 2, h / 2), angle, 1.0)
    return cv2.warpAffine(ink, turn, (w, h)), cv2.warpAffine(others, turn, (w, h))


def test_a_row_held_askew_is_read_to_its_ends(glyphs, committed_model):
    """Turned 20 degrees, the row's first digit crosses the band's bottom edge and its last
    the top; the rows of the sheet above and below reach into the band."""
    turned, others = askew(glyphs, [(1, 90, 0), (2, 90, 15), (3, 90, 15), (4, 90, 15), (5, 90, 15)], 20)
    band_top = (turned.shape[0] - BAND[3]) // 2
    rows = np.flatnonzero(turned.any(axis=1))
    assert rows[0] < band_top and rows[-1] >= band_top + BAND[3]     # it does cross both edges
    assert read_number(committed_model, camera_frame(turned)) == "12345"
    assert read_number(committed_model, camera_frame(turned | others)) == "12345"


def test_a_short_row_held_askew_is_read_to_its_ends(glyphs, committed_model):
    """Only two of its four digits lie wholly in the band: the row's slope, from those two,
    still finds its ends (the code before, which asked for three, read 358)."""
    turned, others = askew(glyphs, [(2, 90, 0), (3, 90, 25), (5, 90, 25), (8, 90, 25)], 20)
    band_top = (turned.shape[0] - BAND[3]) // 2
    _, components = main.ink_components(turned)
    assert sum(main.within_rows(c.box, (band_top, BAND[3])) for c in components) == 2
    assert read_number(committed_model, camera_frame(turned)) == "2358"
    assert read_number(committed_model, camera_frame(turned | others)) == "2358"


def ruled_paper(frame, level=125, margin_x=265, margin_level=110):
    for y in range(40, 480, 38):                 # a printed line every 38 px, a little askew
        cv2.line(frame, (0, y), (640, y + 4), level, 2)
    cv2.line(frame, (margin_x, 0), (margin_x, 480), margin_level, 2)   # the margin line


def test_digits_crossed_by_ruled_lines_are_read(glyphs, committed_model):
    ink = row(glyphs, [(3, 90, 0), (8, 90, 25), (6, 90, 25)])
    assert read_number(committed_model, camera_frame(ink, ruled_paper)) == "386"


def squared_paper_broken_mid_band(frame):
    """Squared paper dark enough to pass for ink, its vertical lines broken across the middle
    of the band (a fold, a patchy print): no line runs unbroken across the band's reach, from
    above it to below it."""
    for y in range(30, 480, 38):
        cv2.line(frame, (0, y), (640, y), 135, 2)
    for x in range(20, 640, 38):
        for top, bottom in ((0, 236), (242, 480)):
            cv2.line(frame, (x, top), (x, bottom), 135, 2)


def fine_pen_row_and(extra):
    """A 0 and a 1 in a fine pen (3 px) across the band, and `extra` drawn after them."""
    ink = np.zeros((BAND[3], BAND[2]), np.uint8)
    cv2.ellipse(ink, (200, 96), (22, 38), 0, 0, 360, 255, 3)
    cv2.line(ink, (280, 58), (280, 134), 255, 3)
    extra(ink)
    return ink


def test_the_dotted_remains_of_a_printed_line_are_no_1():
    """A faint squared line that a shadow breaks up is not found as a line; its dashes
    (longer than specks of this pen, gaps nearly as long) stacked into a "1" on 17 of 300
    blank notebook pages. Six dashes covering 56 % of their height are no digit."""
    def dotted(ink):
        for y0 in range(40, 150, 18):
            cv2.line(ink, (360, y0), (360, y0 + 9), 255, 2)
    count, options, _ = main.segment_number(fine_pen_row_and(dotted))
    assert count == 2 and all(box[0] < 300 for o in options for box, _ in o.digits)


def test_a_1_broken_in_three_places_by_a_faint_pen_is_still_a_digit():
    def broken(ink):
        for y0, y1 in ((58, 80), (83, 104), (107, 126), (129, 134)):
            cv2.line(ink, (360, y0), (360, y1), 255, 3)
    count, options, _ = main.segment_number(fine_pen_row_and(broken))
    assert count == 3 and any(box[0] > 350 and box[3] > 70 for o in options for box, _ in o.digits)


def test_digits_on_squared_paper_whose_lines_break_are_read(glyphs, committed_model):
    ink = row(glyphs, [(9, 90, 0), (3, 90, 25), (0, 70, 25)])
    assert read_number(committed_model, camera_frame(ink, squared_paper_broken_mid_band)) == "930"


def written_417_on_the_margin_line(pen=None, darkening=1.0):
    """A 640x480 frame of ruled paper with "417" written thin and gray, the 4's stem drawn
    along the margin line: in pencil (`pen`, the gray it leaves, darker than the print) or
    in a faint translucent ink that keeps `darkening` of the light under it, print or paper."""
    frame = np.full((480, 640), 205, np.uint8)
    stem_x = 230
    ruled_paper(frame, level=160, margin_x=stem_x, margin_level=160)
    top, bottom = 195, 285
    strokes = [[(stem_x - 12, top), (stem_x - 42, top + 60), (stem_x + 15, top + 60)],   # 4
               [(stem_x, top + 15), (stem_x, bottom)],
               [(stem_x + 60, top), (stem_x + 60, bottom)],                               # 1
               [(stem_x + 100, top), (stem_x + 150, top), (stem_x + 115, bottom)]]        # 7
    written = np.zeros_like(frame)
    for stroke in strokes:
        cv2.polylines(written, [np.array(stroke, np.int32)], False, 255, 3, cv2.LINE_AA)
    cover = written.astype(np.float32) / 255
    under = pen if pen is not None else frame * darkening
    frame = np.round(frame * (1 - cover) + under * cover).astype(np.uint8)
    return as_camera_sees(frame)


def test_a_stroke_along_a_printed_line_is_kept(committed_model):
    """Removing the margin line must not remove the 4's stem drawn along it: the pencil on
    the line is darker than the line alone."""
    assert read_number(committed_model, written_417_on_the_margin_line(pen=110)) == "417"


def test_a_faint_pen_along_a_printed_line_is_kept(committed_model):
    """A faint translucent pen, as light as the print off the line, darkens the line as it
    darkens the paper: its stem along the margin line is the stroke, not the line (the code
    before kept only ink on a line darker than the line by as much again as the line darkens
    the paper, and read "617": the stem gone, the 4 read as a 6)."""
    assert read_number(committed_model, written_417_on_the_margin_line(darkening=0.75)) == "417"


def test_a_single_digit_on_ruled_paper_is_read(glyphs, committed_model):
    frame = np.full((480, 640), 205, np.uint8)
    ruled_paper(frame)
    digit = cv2.resize(glyphs[8], (int(glyphs[8].shape[1] * 150 / glyphs[8].shape[0]), 150))
    y, x = 165, 320 - digit.shape[1] // 2
    frame[y:y + 150, x:x + digit.shape[1]][digit > 127] = 45
    pre = main.preprocess_frame(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    assert pre.model_input is not None
    assert committed_model.probabilities(pre.model_input[None]).argmax() == 8


@pytest.mark.parametrize("room, note_size", [(30, (150, 130)), (55, (140, 160))])
def test_a_note_held_up_in_front_of_a_dark_room_is_read(glyphs, committed_model, room, note_size):
    frame = np.full((480, 640), room, np.uint8)                # a dark room
    note = cv2.boxPoints(((320, 240), note_size, 8)).astype(np.int32)
    cv2.fillPoly(frame, [note], 215)                            # a small note, inside the ROI
    digit = cv2.resize(glyphs[4], (int(glyphs[4].shape[1] * 90 / glyphs[4].shape[0]), 90))
    y, x = 195, 320 - digit.shape[1] // 2
    frame[y:y + 90, x:x + digit.shape[1]][digit > 127] = 50
    pre = main.preprocess_frame(as_camera_sees(frame))
    assert pre.model_input is not None
    assert committed_model.probabilities(pre.model_input[None]).argmax() == 4


def test_a_row_in_a_deep_shadow_is_read_to_its_end(glyphs, committed_model):
    """A shadow falling across the paper darkens it to under half its light: unlike a room
    behind a note, it fades in over tens of pixels, and the digits in it are read (the code
    before took the shadow for a room, and read only the digits before it)."""
    frame = camera_frame(row(glyphs, [(3, 90, 0), (5, 90, 25), (7, 90, 25), (2, 90, 25)]))
    light = np.interp(np.arange(640), [250, 400], [1.0, 0.42]).astype(np.float32)
    shaded = (frame * light[None, :, None]).astype(np.uint8)
    assert read_number(committed_model, shaded) == "3572"


def test_leading_zeros_are_kept(glyphs, committed_model):
    ink = row(glyphs, [(0, 85, 0), (7, 90, 25), (5, 90, 25), (5, 90, 25)])
    assert read_number(committed_model, camera_frame(ink)) == "0755"


def blue_on_yellow(glyphs, quality):
    """28463 in a thin blue ballpoint on yellow paper, as a webcam's MJPG sends it."""
    ink = row(glyphs, [(2, 70, 0), (8, 70, 14), (4, 70, 14), (6, 70, 14), (3, 70, 14)])
    frame = np.empty((480, 640, 3), np.uint8)
    frame[:] = (90, 225, 235)                                   # yellow paper, BGR
    x, y, w, h = BAND
    thin = cv2.erode(ink, np.ones((3, 3), np.uint8))            # a ballpoint, not a marker
    frame[y:y + h, x:x + w][thin > 0] = (150, 70, 30)           # blue ink
    return rp.sent_as_jpeg(cv2.GaussianBlur(frame, (3, 3), 0), quality)


@pytest.mark.parametrize("quality, floor", [(40, 3), (50, 9), (60, 9), (75, 11)])
def test_blue_ink_on_yellow_paper_sent_as_mjpg_is_read(glyph_sets, committed_model, quality, floor):
    """JPEG rings around coloured strokes in one channel: specks of false ink beside every
    digit, which join neighbours and break the row (with the first hand, the code before
    read 2173, 2053, 28443 and 287463 at quality 30-60, and 28463 from 75 on). Over 12
    hands, 3, 9, 9 and 11 of 12 today (2, 7, 8 and 10 with 800 hidden units): a thin 6 or 4
    whose stroke JPEG breaks still comes apart, most at quality 30 (1 of 12 with either
    model; the first hand of the model with 800 units was that one)."""
    reads = reads_over_hands(glyph_sets, committed_model, lambda glyphs: blue_on_yellow(glyphs, quality))
    assert sum(read == "28463" for read in reads) >= floor, reads
