"""Frames of every size: a 12 MP phone photo or a 1080p webcam reads as a 640x480 frame does."""

import cv2
import numpy as np
import pytest

import main
import synthetic_camera as sc
from conftest import read_right, run_main


def headless_answer(image_path, tmp_path, *mode):
    out = tmp_path / f"{image_path.stem}.jsonl"
    result = run_main("--source", image_path, "--headless", "--no-eval", "--predictions", out, *mode)
    assert result.returncode == 0, result.stderr
    record, = sc.read_predictions(out)
    return record.get("number") if mode else record["digit"]


@pytest.fixture(scope="module")
def digits(mnist_npz, committed_model):
    """MNIST test digits the model reads right and surely as clean images: what is tested
    is the frame's size, not a digit the model doubts (an 8 read as 1 at 0.59 at one size
    agrees with the other only by chance)."""
    with np.load(mnist_npz) as data:
        x_test, y_test = data["x_test"], data["y_test"]
    sure = read_right(committed_model, x_test, y_test, least=0.99)
    return x_test[sure], y_test[sure]


@pytest.mark.parametrize("seed", [1, 2])
def test_a_12_megapixel_photo_reads_as_the_same_scene_at_640x480(digits, tmp_path, seed):
    x_test, y_test = digits
    rng = np.random.default_rng(seed)
    i, row = rng.integers(len(x_test)), rng.choice(len(x_test), 4, replace=False)
    one = sc.mnist_alpha(x_test[i])
    number = sc.number_alpha(x_test[row], rng)
    written = ((one, (), int(y_test[i])), (number, ("--multi",), "".join(str(d) for d in y_test[row])))
    for alpha, mode, truth in written:
        answers = []
        for size in ((640, 480), (4032, 3024)):
            path = tmp_path / f"{size[0]}{'-number' if mode else ''}.jpg"
            cv2.imwrite(str(path), sc.same_scene(size, alpha, seed, number=bool(mode)))
            answers.append(headless_answer(path, tmp_path, *mode))
        assert answers == [truth, truth], (mode, answers)


def test_the_working_size_keeps_a_640x480_frame_as_it_is():
    frame = np.full((480, 640, 3), 200, np.uint8)
    image, scale = main.working_image(frame, main.centered_roi(frame.shape), main.WORK_SIDE)
    assert scale == 1.0 and image.shape[:2] == (240, 240)
    band = main.number_band(frame.shape)
    assert main.working_image(frame, band, main.WORK_BAND_HEIGHT)[0].shape[:2] == (band[3], band[2])


def test_a_large_roi_is_read_at_the_working_size():
    frame = np.full((3024, 4032, 3), 200, np.uint8)
    cv2.line(frame, (2000, 1300), (2000, 1700), (0, 0, 0), 3)   # a thin stroke survives
    pre = main.preprocess_frame(frame)
    assert pre.ink.shape == (main.WORK_SIDE, main.WORK_SIDE) and pre.scale == pytest.approx(1512 / 240)
    assert pre.model_input is not None
    number = main.preprocess_number(frame)
    assert number.ink.shape[0] == main.WORK_BAND_HEIGHT


def test_an_image_smaller_than_the_roi_minimum_is_no_digit(tmp_path):
    tiny = tmp_path / "tiny.png"
    cv2.imwrite(str(tiny), np.full((20, 30, 3), 200, np.uint8))
    assert headless_answer(tiny, tmp_path) is None
    assert headless_answer(tiny, tmp_path, "--multi") is None


def test_a_1080p_video_reads_at_least_as_well_as_a_640x480_one(mnist_npz, tmp_path):
    accuracy = {}
    for size in ((640, 480), (1920, 1080)):
        video = tmp_path / f"{size[0]}.avi"
        labels = sc.mnist_test_video(video, mnist_npz, count=100, seed=8, size=size)
        out = tmp_path / f"{size[0]}.jsonl"
        assert run_main("--source", video, "--headless", "--no-eval", "--predictions",
                        out).returncode == 0
        accuracy[size] = sc.score(labels, sc.read_predictions(out))
    low, high = accuracy[(640, 480)], accuracy[(1920, 1080)]
    one_frame = 1 / sum(label is not None for label in labels)  # the same scenes, re-encoded
    assert high[0] >= low[0] - one_frame and high[1] >= 0.95, accuracy


def test_a_phone_photo_stored_sideways_is_read_upright(tmp_path):
    from PIL import Image   # Pillow comes with matplotlib

    upright = np.full((480, 640, 3), 220, np.uint8)
    cv2.putText(upright, "7", (270, 330), cv2.FONT_HERSHEY_SIMPLEX, 7, (30, 30, 30), 18)
    stored = cv2.rotate(upright, cv2.ROTATE_90_COUNTERCLOCKWISE)   # as the phone's sensor saw it
    photo = Image.fromarray(cv2.cvtColor(stored, cv2.COLOR_BGR2RGB))
    exif = photo.getexif()
    exif[0x0112] = 6            # Orientation: turn 90 degrees clockwise to show
    path = tmp_path / "phone.jpg"
    photo.save(path, exif=exif)
    assert main.read_image(path).shape == (480, 640, 3)
    assert headless_answer(path, tmp_path) == 7
