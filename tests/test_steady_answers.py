"""A held digit gives one steady answer."""

import numpy as np

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
