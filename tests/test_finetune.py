"""Learning the user's own handwriting: --finetune on samples saved with keys 0-9."""

import re

import numpy as np
import pytest

import main
import synthetic_camera as sc
from conftest import run_main


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
