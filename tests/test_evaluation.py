"""Evaluation reports: every file, metrics that agree with the model, real images."""

import json
import os

import cv2
import numpy as np
import pytest

import main
from conftest import offline_env, run_main


@pytest.fixture(scope="module")
def evaluated(small_model, mnist, tmp_path_factory):
    _, model_path = small_model
    _, (x_test, y_test) = mnist
    reports = tmp_path_factory.mktemp("reports")
    model = main.load_model(model_path)
    metrics = main.evaluate_model(model, x_test[:2000], y_test[:2000], model_path, reports)
    return model, model_path, reports, metrics, (x_test[:2000], y_test[:2000])


def test_every_report_file_is_written(evaluated):
    _, _, reports, _, _ = evaluated
    for name in main.REPORT_FILES:
        assert (reports / name).is_file() and (reports / name).stat().st_size > 0, name


def test_metrics_agree_with_the_models_measured_accuracy(evaluated):
    model, model_path, reports, _, (x, y) = evaluated
    measured = float(np.mean(model.probabilities(main.scale_pixels(x)).argmax(1) == y))
    metrics = json.loads((reports / "metrics.json").read_text())
    assert metrics["accuracy"] == pytest.approx(measured, abs=1e-9)
    assert metrics["model_sha256"] == main.file_sha256(model_path)
    assert sum(c["support"] for c in metrics["per_class"].values()) == len(y)
    for digit in map(str, range(10)):
        entry = metrics["per_class"][digit]
        assert {"precision", "recall", "f1", "support", "roc_auc"} <= set(entry)
        assert 0.5 < entry["roc_auc"] <= 1.0
    assert 0.5 < metrics["macro_roc_auc"] <= 1.0
    assert metrics["training_seconds"] > 0 and metrics["epochs"] == 1
    report = (reports / "classification_report.txt").read_text()
    assert "precision" in report and f"{measured:.4f}" in report


def test_each_figure_is_a_non_empty_image(evaluated):
    _, _, reports, _, _ = evaluated
    for name in main.REPORT_FIGURES:
        image = cv2.imread(str(reports / name))
        assert image is not None and image.shape[0] > 200 and image.shape[1] > 200, name
        assert image.std() > 5, f"{name} is blank"


def test_history_is_saved_with_the_reports(evaluated, small_model):
    result, _ = small_model
    _, _, reports, _, _ = evaluated
    assert json.loads((reports / "history.json").read_text()) == result.history


def test_reports_are_current_only_for_the_same_model(evaluated, tmp_path):
    _, model_path, reports, _, _ = evaluated
    assert main.reports_are_current(reports, model_path)
    other = tmp_path / "other.keras"
    other.write_bytes(model_path.read_bytes() + b"\0")
    assert not main.reports_are_current(reports, other)
    assert not main.reports_are_current(tmp_path / "empty", model_path)


def test_cli_evaluates_once_then_skips_while_reports_are_current(small_model, tmp_path):
    _, model_path = small_model
    model = tmp_path / "m.keras"
    model.write_bytes(model_path.read_bytes())
    first = run_main("--model", model, "--reports", tmp_path / "r", "--no-live")
    assert first.returncode == 0, first.stderr
    assert "precision" in first.stdout and "reports written to" in first.stdout
    second = run_main("--model", model, "--reports", tmp_path / "r", "--no-live")
    assert second.returncode == 0 and "up to date" in second.stdout
    assert "precision" not in second.stdout


def test_missing_evaluation_data_does_not_stop_the_app(small_model, tmp_path):
    _, model_path = small_model
    result = run_main("--model", model_path, "--reports", tmp_path / "r", "--no-live",
                      "--data", tmp_path / "absent.npz")
    assert result.returncode == 0, result.stderr
    assert "skipping evaluation" in result.stdout and "absent.npz" in result.stdout


def test_offline_start_tries_the_download_once_per_model(small_model, tmp_path):
    """Offline, trying to download MNIST costs seconds (Keras's import) at every start, and
    fails again: after one failure, starts skip it until asked (--evaluate) or the model
    file changes."""
    _, model_path = small_model
    model = tmp_path / "m.keras"
    model.write_bytes(model_path.read_bytes())
    start = lambda *more: run_main("--model", model, "--reports", tmp_path / "r", "--no-live",
                                   *more, env=offline_env(tmp_path))
    first, second, asked = start(), start(), start("--evaluate")
    for result in (first, second, asked):
        assert result.returncode == 0, result.stderr
    assert "could not download MNIST" in first.stdout
    assert "earlier start" in second.stdout and "--evaluate" in second.stdout
    assert "could not download" not in second.stdout and "Downloading" not in second.stdout
    assert "could not download MNIST" in asked.stdout
    model.write_bytes(main.DEFAULT_MODEL.read_bytes())   # another model file: try again
    assert "could not download MNIST" in start().stdout


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to read-only folders")
def test_unwritable_reports_folder_is_reported_and_the_app_goes_on(small_model, tmp_path):
    _, model_path = small_model
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    result = run_main("--model", model_path, "--reports", locked / "r", "--no-live")
    assert result.returncode == 0 and "warning: cannot write reports" in result.stderr
