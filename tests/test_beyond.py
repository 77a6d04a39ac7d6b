"""Steady answers, whole numbers, and learning the user's own handwriting."""

import json
import re

import numpy as np
import pytest

import main
import synthetic_camera as sc
from conftest import run_main


def test_a_held_digit_does_not_flicker(mnist_npz, tmp_path):
    """Each digit held 12 frames with jitter and noise: at most one change of answer per digit."""
    rng = np.random.default_rng(12)
    with np.load(mnist_npz) as data:
        x_test, y_test = data["x_test"], data["y_test"]
    picked = rng.choice(len(x_test), size=40, replace=False)
    frames = sc.digit_sequence(x_test[picked], y_test[picked], rng, hold=12, blank_every=5,
                               blank_run=1)
    video = tmp_path / "held.avi"
    labels = sc.write_video(video, frames, rng)
    out = tmp_path / "held.jsonl"
    assert run_main("--source", video, "--headless", "--no-eval", "--predictions",
                    out).returncode == 0
    answers = [r["digit"] for r in sc.read_predictions(out)]
    changes_per_digit, previous, start = [], None, 0
    for i in range(1, len(labels) + 1):
        if i == len(labels) or labels[i] != labels[i - 1] or (labels[i] is not None and i - start >= 12):
            segment = answers[start:i]
            if labels[start] is not None:
                changes = sum(a != b for a, b in zip([previous] + segment, segment))
                changes_per_digit.append(changes)
            previous, start = (segment[-1] if segment else previous), i
    assert len(changes_per_digit) == 40
    assert max(changes_per_digit) <= 1, changes_per_digit


@pytest.fixture(scope="module")
def number_run(mnist_npz, tmp_path_factory):
    folder = tmp_path_factory.mktemp("numbers")
    video = folder / "numbers.avi"
    numbers = sc.number_video(video, mnist_npz, count=80, seed=6)
    out = folder / "numbers.jsonl"
    result = run_main("--source", video, "--headless", "--multi", "--no-eval", "--predictions", out)
    assert result.returncode == 0, result.stderr
    return numbers, sc.read_predictions(out)


def test_whole_numbers_are_read_exactly_in_at_least_90_percent_of_frames(number_run):
    numbers, records = number_run
    exact = np.mean([r["number"] == n for r, n in zip(records, numbers)])
    assert len(records) == len(numbers) and exact >= 0.90, exact


def test_number_records_list_the_digits_left_to_right(number_run):
    _, records = number_run
    for record in records:
        assert record["number"] == "".join(map(str, record["digits"])) or (
            record["number"] is None and record["digits"] == [])


def test_blank_paper_has_no_number(tmp_path):
    import cv2
    rng = np.random.default_rng(3)
    image = tmp_path / "blank.png"
    cv2.imwrite(str(image), sc.camera_frame(sc.random_scene(rng, 640, 480), None, rng))
    out = tmp_path / "blank.jsonl"
    assert run_main("--source", image, "--headless", "--multi", "--no-eval", "--predictions",
                    out).returncode == 0
    record, = sc.read_predictions(out)
    assert record["number"] is None and record["digits"] == [] and record["digit"] is None


def test_touching_digits_are_cut_apart_and_a_wide_zero_is_not():
    import cv2
    ink = np.zeros((200, 600), np.uint8)
    cv2.ellipse(ink, (150, 100), (55, 60), 0, 0, 360, 255, 12)          # a wide 0
    cv2.line(ink, (330, 40), (330, 160), 255, 12)                         # a 1 ...
    cv2.ellipse(ink, (385, 100), (45, 60), 0, 0, 360, 255, 12)           # ... touching a 0
    blobs = main.segment_number(ink)
    assert len(blobs) == 2
    wide_zero, touching = blobs
    assert all(len(a.pieces) == 2 for a in touching[1:]) and len(touching) > 1
    assert all(len(a.pieces) == 1 or a.prior > 0 for a in wide_zero)


def test_finetuning_learns_a_users_style_and_keeps_mnist(committed_model, mnist_npz, tmp_path):
    samples = tmp_path / "samples"
    sc.write_user_samples(samples, main.mnist_input_from_mask, per_digit=20, seed=9)
    model = tmp_path / "model.keras"
    model.write_bytes(main.DEFAULT_MODEL.read_bytes())
    result = run_main("--finetune", "--samples", samples, "--model", model, "--data", mnist_npz,
                      "--no-live", "--no-eval", timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    found = re.search(r"([\d.]+)% before, ([\d.]+)% after; MNIST test accuracy now ([\d.]+)%",
                      result.stdout)
    before, after, on_mnist = (float(v) / 100 for v in found.groups())
    assert after - before >= 0.05, (before, after)
    assert on_mnist >= 0.985
    info = main.read_training_info(model)
    assert info["finetune"]["held_out_after"] == pytest.approx(after, abs=0.001)
    assert info["history"] == main.read_training_info(main.DEFAULT_MODEL)["history"]
    main.load_model(model)


def test_finetune_without_samples_says_how_to_collect_them(tmp_path):
    result = run_main("--finetune", "--samples", tmp_path / "none", "--model", main.DEFAULT_MODEL,
                      "--no-live", "--no-eval")
    assert result.returncode == 2 and "press a digit key 0-9" in result.stderr
    assert "Traceback" not in result.stderr


def test_samples_are_split_per_digit_for_a_fair_check():
    labels = np.repeat(np.arange(10), 10)
    train, held = main.split_held_out(labels, fraction=0.3, seed=1)
    assert len(set(train) & set(held)) == 0 and len(train) + len(held) == 100
    assert all(np.sum(labels[held] == d) == 3 for d in range(10))
