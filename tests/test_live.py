"""The live pipeline end to end, headless: accuracy on camera-like video, records, sources."""

import json

import cv2
import numpy as np
import pytest

import main
import synthetic_camera as sc
from conftest import run_main


@pytest.fixture(scope="module")
def headless_run(camera_video, tmp_path_factory):
    video, labels = camera_video
    out = tmp_path_factory.mktemp("run") / "predictions.jsonl"
    result = run_main("--source", video, "--headless", "--predictions", out, "--no-eval")
    assert result.returncode == 0, result.stderr
    return labels, sc.read_predictions(out), result


def test_reads_at_least_97_percent_of_digit_frames_and_95_percent_of_blanks(headless_run):
    labels, records, _ = headless_run
    digits_right, blanks_right = sc.score(labels, records)
    assert digits_right >= 0.97, digits_right
    assert blanks_right >= 0.95, blanks_right


def test_one_record_per_frame_in_order_with_the_documented_fields(headless_run):
    labels, records, result = headless_run
    assert [r["frame"] for r in records] == list(range(len(labels)))
    for record in records:
        assert record["digit"] is None or record["digit"] in range(10)
        assert 0.0 <= record["confidence"] <= 1.0 and record["ms"] > 0
    summary = result.stdout.strip().splitlines()[-1]
    digits = sum(r["digit"] is not None for r in records)
    assert summary.startswith(f"frames {len(labels)}, digits read {digits}, median ")


def test_printed_digits_are_read_too(tmp_path):
    video = tmp_path / "printed.avi"
    labels = sc.printed_digits_video(video, seed=2)
    out = tmp_path / "p.jsonl"
    assert run_main("--source", video, "--headless", "--predictions", out,
                    "--no-eval").returncode == 0
    digits_right, _ = sc.score(labels, sc.read_predictions(out))
    assert digits_right >= 0.9, digits_right


def test_max_frames_stops_early(camera_video, tmp_path):
    video, _ = camera_video
    out = tmp_path / "few.jsonl"
    result = run_main("--source", video, "--headless", "--predictions", out, "--no-eval",
                      "--max-frames", 7)
    assert result.returncode == 0 and len(sc.read_predictions(out)) == 7


def test_an_image_file_is_one_frame_headless(mnist, tmp_path):
    _, (x_test, y_test) = mnist
    rng = np.random.default_rng(5)
    scene = sc.random_scene(rng, 640, 480)
    image = tmp_path / "digit.png"
    cv2.imwrite(str(image), sc.camera_frame(scene, sc.mnist_alpha(x_test[0]), rng))
    out = tmp_path / "one.jsonl"
    result = run_main("--source", image, "--headless", "--predictions", out, "--no-eval")
    records = sc.read_predictions(out)
    assert result.returncode == 0 and len(records) == 1
    assert records[0]["digit"] == int(y_test[0])


class CountingModel:
    """Wraps a model and counts its batches: one model call per frame, no more."""

    def __init__(self, model):
        self.model, self.batches = model, 0

    def probabilities(self, x):
        self.batches += 1
        return self.model.probabilities(x)


def test_reader_calls_the_model_once_a_frame_and_smooths_a_steady_digit(committed_model, mnist):
    _, (x_test, y_test) = mnist
    model = CountingModel(committed_model)
    reader = main.DigitReader(model, min_confidence=0.6, smooth=5)
    digit = main.scale_pixels(x_test[0])
    readings = [reader.read(digit) for _ in range(6)]
    assert {r.digit for r in readings} == {int(y_test[0])}
    assert len(reader.recent) == 5 and model.batches == 6
    assert reader.read(None).digit is None and len(reader.recent) == 0
    reader.read(digit)
    reader.reset()
    assert len(reader.recent) == 0 and reader.previous_input is None


class ScriptedModel:
    """Answers each call with the next of the given probability rows."""

    def __init__(self, rows):
        self.rows = iter(rows)

    def probabilities(self, x):
        return np.array([next(self.rows)], np.float32)


def probabilities_for(**shares):
    row = np.zeros(10, np.float32)
    for name, share in shares.items():
        row[int(name[1:])] = share
    return row


def test_a_digit_read_two_ways_keeps_its_answer_until_another_clearly_leads():
    split = [probabilities_for(d0=0.46, d8=0.44), probabilities_for(d0=0.43, d8=0.47)] * 3
    clear = [probabilities_for(d0=0.1, d8=0.9)] * 2
    reader = main.DigitReader(ScriptedModel(split + clear), smooth=1)
    digit = np.zeros((28, 28), np.float32)
    answers = [reader.read(digit).digit for _ in range(len(split) + len(clear))]
    assert answers == [0] * len(split) + [8] * len(clear)
    reader.reset()
    assert reader.shown is None


def test_low_confidence_is_flagged_uncertain(committed_model):
    reader = main.DigitReader(committed_model, min_confidence=1.01, smooth=1)
    reading = reader.read(np.full((28, 28), 0.3, np.float32))
    assert reading.digit is not None and reading.uncertain


def test_overlay_draws_roi_prediction_and_status_on_a_copy():
    frame = np.full((480, 640, 3), 128, np.uint8)
    pre = main.Preprocessed((200, 120, 240, 240), np.zeros((240, 240), np.uint8),
                            np.zeros((28, 28), np.float32))
    on = main.draw_overlay(frame, pre, main.Reading(7, 0.93), inference_on=True, fps=30.0)
    off = main.draw_overlay(frame, pre, main.Reading(None, 0.0), inference_on=False, fps=30.0)
    assert (frame == 128).all()                       # the camera frame itself is untouched
    assert tuple(on[120, 300]) == main.GREEN          # ROI edge, green while reading
    assert tuple(off[120, 300]) == main.GREY
    assert (on[130:200, 445:560] != off[130:200, 445:560]).any()  # the digit beside the ROI


def test_the_number_goes_below_the_labels_of_digits_that_reach_below_the_band():
    """A row held askew reaches below the band: its lowest digit's label stays in sight."""
    canvas = np.full((480, 640, 3), 128, np.uint8)
    band = main.number_band(canvas.shape)
    low = main.Reading(1, 0.5, uncertain=True, box=(40, band[3] - 60, 20, 90))   # 30 px below
    answer = main.NumberReading([low, main.Reading(2, 0.99, box=(120, 40, 50, 90))])
    main.draw_number_answer(canvas, band, answer, ink_scale=1.0)
    label = canvas[band[1] + band[3] + 30:band[1] + band[3] + 60, band[0] + 40:band[0] + 70]
    assert (label == main.YELLOW).all(axis=2).any()   # the uncertain 1's own label
