"""Bad input and faults: a one-line message, the right exit status, nothing lost or hung."""

import errno
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import main
from conftest import MAIN, ROOT, assert_clean_error, run_main


# ----- camera and sources --------------------------------------------------------------

def test_no_camera_at_an_index_is_reported_quickly():
    started = time.monotonic()
    with pytest.raises(main.UserError, match="no camera at index 9; connect one or pass --source"):
        main.open_camera(9)
    assert time.monotonic() - started < 6


def test_cli_no_camera_exits_2(small_model):
    _, model = small_model
    result = run_main("--model", model, "--no-eval", "--headless", "--source", "9")
    assert_clean_error(result, "no camera at index 9")


class DyingCapture:
    """A camera that delivers a few frames, then nothing, as when its cable is pulled."""

    def __init__(self, frames):
        self.frames, self.released = frames, False

    def read(self):
        if self.frames:
            self.frames -= 1
            return True, np.full((480, 640, 3), 200, np.uint8)
        return False, None

    def release(self):
        self.released = True


def test_a_camera_that_stops_is_retried_then_closed_with_a_message(committed_model, monkeypatch):
    monkeypatch.setattr(main, "CAMERA_RETRY_SECONDS", 0.3)
    capture = DyingCapture(frames=4)
    source = main.FrameSource(capture, is_camera=True, name="0")
    log = main.PredictionLog(None)
    started = time.monotonic()
    with pytest.raises(main.UserError, match="camera 0 stopped delivering frames") as error:
        main.run_headless(source, main.DigitReader(committed_model), log)
    assert time.monotonic() - started >= 0.3          # it did wait for the camera to come back
    assert log.frames == 4 and error.value.status != 0


def test_a_camera_that_hiccups_is_not_given_up_on(committed_model, monkeypatch):
    class Hiccup(DyingCapture):
        def read(self):
            self.calls = getattr(self, "calls", 0) + 1
            return (False, None) if self.calls == 3 else super().read()
    capture = Hiccup(frames=6)
    source = main.FrameSource(capture, is_camera=True, name="0")
    monkeypatch.setattr(main, "CAMERA_RETRY_SECONDS", 0.3)
    log = main.PredictionLog(None)
    with pytest.raises(main.UserError):
        main.run_headless(source, main.DigitReader(committed_model), log)
    assert log.frames == 6                           # the lost frame did not end the run


@pytest.mark.parametrize("make, fragment", [
    (lambda d: d / "absent.avi", "source not found"),
    (lambda d: d, "not a file"),
    (lambda d: (d / "notes.avi").write_text("not a video") and d / "notes.avi", "video or an image"),
    (lambda d: (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken") and d / "broken.png",
     "video or an image"),
])
def test_bad_sources_exit_2_with_a_message(small_model, tmp_path, make, fragment):
    _, model = small_model
    result = run_main("--model", model, "--no-eval", "--headless", "--source", make(tmp_path))
    assert_clean_error(result, fragment)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_source_exits_2(small_model, tmp_path):
    _, model = small_model
    video = tmp_path / "locked.avi"
    video.write_bytes(b"x")
    video.chmod(0)
    assert_clean_error(run_main("--model", model, "--no-eval", "--headless", "--source", video),
                       "not readable")


def test_window_mode_without_a_display_says_use_headless(small_model, tmp_path):
    _, model = small_model
    result = run_main("--model", model, "--no-eval", "--source", tmp_path / "x.avi",
                      env={"DISPLAY": "", "WAYLAND_DISPLAY": ""})
    assert_clean_error(result, "no display", "--headless")


# ----- model and data files ------------------------------------------------------------

def different_model(path, input_shape, outputs):
    model = keras.Sequential([keras.Input(input_shape), keras.layers.Flatten(),
                              keras.layers.Dense(outputs, activation="softmax")])
    model.save(path)


@pytest.mark.parametrize("kind", ["truncated", "not a zip", "empty", "wrong input", "wrong output"])
def test_unusable_model_files_name_the_file_and_suggest_retrain(small_model, tmp_path, kind):
    _, good = small_model
    path = tmp_path / "model.keras"
    if kind == "truncated":
        path.write_bytes(good.read_bytes()[:5000])
    elif kind == "not a zip":
        path.write_text("definitely not a model")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "wrong input":
        different_model(path, (32, 32), 10)
    else:
        different_model(path, (28, 28), 5)
    result = run_main("--model", path, "--no-live", "--no-eval")
    assert_clean_error(result, str(path), "--retrain")


@pytest.fixture(scope="module")
def small_npz(mnist, tmp_path_factory):
    """The first 3,000 training and 1,000 test images: enough for a quick real training."""
    (x_train, y_train), (x_test, y_test) = mnist
    path = tmp_path_factory.mktemp("data") / "small.npz"
    np.savez(path, x_train=x_train[:3000], y_train=y_train[:3000], x_test=x_test[:1000],
             y_test=y_test[:1000])
    return path


def test_retrain_replaces_a_broken_model_and_keeps_it_as_broken(small_npz, tmp_path):
    path = tmp_path / "model.keras"
    path.write_bytes(b"PK\x03\x04 half a model")
    result = run_main("--model", path, "--data", small_npz, "--retrain", "--epochs", 1,
                      "--no-live", "--no-eval")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "model.keras.broken").read_bytes() == b"PK\x03\x04 half a model"
    assert main.load_model(path).probabilities(np.zeros((1, 28, 28))).shape == (1, 10)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.keras", "model.keras.broken"]


def test_ctrl_c_during_training_leaves_the_old_model_and_no_temporary_file(
        mnist_npz, small_model, tmp_path):
    _, good = small_model
    path = tmp_path / "model.keras"
    path.write_bytes(good.read_bytes())
    before = path.read_bytes()
    process = subprocess.Popen(
        [sys.executable, str(MAIN), "--model", str(path), "--data", str(mnist_npz), "--retrain",
         "--no-live"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    for line in process.stdout:
        if "Epoch 1/" in line:  # inside fit(), where TensorFlow could swallow the signal
            break
    time.sleep(1)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and "Traceback" not in stderr
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.keras"]


# ----- the file system -----------------------------------------------------------------

def test_reports_path_that_cannot_be_a_folder_is_reported_and_live_still_runs(
        small_model, tmp_path):
    _, model = small_model
    blocker = tmp_path / "reports"
    blocker.write_text("a file where the reports folder should be")
    image = tmp_path / "paper.png"
    import cv2
    cv2.imwrite(str(image), np.full((480, 640, 3), 210, np.uint8))
    result = run_main("--model", model, "--reports", blocker, "--headless", "--source", image)
    assert result.returncode == 0, result.stderr
    assert "warning: cannot write reports" in result.stderr
    assert result.stdout.strip().splitlines()[-1].startswith("frames 1,")


def test_a_full_disk_while_writing_reports_is_reported(small_model, mnist, tmp_path, monkeypatch,
                                                       capsys):
    import matplotlib.figure

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", disk_full)
    result, model_path = small_model
    options = main.parse_args(["--model", str(model_path), "--reports", str(tmp_path / "r"),
                               "--evaluate"])
    _, (x_test, y_test) = mnist
    monkeypatch.setattr(main, "load_mnist", lambda data: (None, (x_test[:500], y_test[:500])))
    main.evaluate_if_needed(options, main.load_model(model_path), trained=False)
    err = capsys.readouterr().err
    assert "cannot write reports" in err and "No space left on device" in err
    assert not (tmp_path / "r" / "metrics.json").exists()


# ----- options -------------------------------------------------------------------------

@pytest.mark.parametrize("args", [["--threshold", "256"], ["--threshold", "-1"], ["--roi", "0"],
                                  ["--roi", "1.5"], ["--epochs", "0"], ["--smooth", "0"],
                                  ["--min-confidence", "2"], ["--threshold", "abc"]])
def test_bad_option_values_get_argparse_errors(args):
    result = run_main(*args, "--no-live")
    assert result.returncode == 2 and "usage:" in result.stderr
    assert "Traceback" not in result.stderr


def test_help_documents_every_option_the_controls_and_the_defaults():
    result = run_main("--help")
    assert result.returncode == 0
    for option in ("--model", "--data", "--retrain", "--epochs", "--seed", "--reports",
                   "--evaluate", "--no-eval", "--show-plots", "--no-live", "--source", "--backend",
                   "--camera-size", "--list-cameras", "--roi", "--threshold", "--min-confidence",
                   "--smooth", "--multi", "--headless", "--predictions", "--max-frames",
                   "--window-size", "--snapshots", "--samples", "--finetune", "--debug"):
        assert option in result.stdout
    text = " ".join(result.stdout.split())       # argparse wraps lines
    for default in ("--roi ROI ROI side as a fraction of the frame's shorter side, in (0, 1] "
                    "(default: 0.5)", "(default: 10)", "(default: 0.6)", "(default: snapshots)"):
        assert default in text
    for keys, does in main.CONTROLS:
        assert f"{keys} {does}" in text
    assert "(default: None)" not in text and "(default: False)" not in text


# ----- frames of every kind ------------------------------------------------------------

frame_shapes = st.tuples(st.integers(1, 120), st.integers(1, 160)).flatmap(
    lambda hw: st.sampled_from([hw, hw + (1,), hw + (3,), hw + (4,)]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=st.one_of(
    arrays(np.uint8, frame_shapes),
    arrays(np.uint16, frame_shapes),
    arrays(np.float32, frame_shapes, elements=st.floats(0, 1, width=32))),
    roi=st.floats(0.05, 1.0), threshold=st.integers(0, 255))
def test_any_frame_gives_no_digit_or_a_valid_model_input(frame, roi, threshold):
    result = main.preprocess_frame(frame, roi, threshold)
    x = result.model_input
    if x is not None:
        assert x.shape == (28, 28) and x.dtype == np.float32
        assert np.isfinite(x).all() and x.min() >= 0.0 and x.max() <= 1.0
    assert result.ink.dtype == np.uint8 and result.ink.ndim == 2


def test_the_readme_lists_the_same_window_controls_as_the_app():
    readme = (ROOT / "README.md").read_text()
    for keys, does in main.CONTROLS:
        assert f"| {keys} | {does} |" in readme
