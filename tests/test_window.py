"""The real OpenCV window under Xvfb, driven with xdotool as a user would."""

import os
import signal
import shutil
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

import main
import synthetic_camera as sc
from conftest import IN_CI, MAIN, ROOT

TOOLS = ("Xvfb", "xdotool", "import")   # import: ImageMagick, for screenshots


def virtual_screen(tmp_path_factory, size):
    """An Xvfb screen of `size` (w, h); yields its DISPLAY name."""
    missing = [tool for tool in TOOLS if not shutil.which(tool)]
    if missing:
        message = (f"window tests need {' and '.join(missing)} "
                   "(apt-get install -y xvfb xdotool imagemagick)")
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    read_end, write_end = os.pipe()
    log = open(tmp_path_factory.mktemp("xvfb") / "xvfb.log", "w")
    # -noreset: otherwise the server resets whenever its last client (xdotool) disconnects.
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write_end), "-screen", "0",
                               f"{size[0]}x{size[1]}x24", "-nolisten", "tcp", "-noreset"],
                              pass_fds=[write_end], stdout=log, stderr=log)
    os.close(write_end)
    number = os.read(read_end, 16).decode().split()[0]
    yield f":{number}"
    server.terminate()
    server.wait(timeout=10)
    log.close()
    os.close(read_end)  # only now: Xvfb may write its number again, and dies if it can't


@pytest.fixture(scope="module")
def display(tmp_path_factory):
    yield from virtual_screen(tmp_path_factory, (1024, 768))


@pytest.fixture(scope="module")
def laptop_screen(tmp_path_factory):
    yield from virtual_screen(tmp_path_factory, (1600, 1000))


def xdotool(display, *args):
    return subprocess.run(["xdotool", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, "DISPLAY": display}, timeout=30)


def wait_for(condition, seconds=30.0, what="condition"):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def press(display, window, key):
    """Type a key into the window as a user would: focus it, then a real (XTEST) key press."""
    xdotool(display, "windowfocus", "--sync", window)
    xdotool(display, "key", key)


def records(path):
    return sc.read_predictions(path) if path.exists() else []


@pytest.fixture
def window_app(display, mnist_npz, tmp_path):
    video = tmp_path / "long.avi"
    sc.mnist_test_video(video, mnist_npz, count=150, seed=4)
    predictions = tmp_path / "window.jsonl"
    process = subprocess.Popen(
        [sys.executable, str(MAIN), "--source", video, "--no-eval", "--predictions", predictions,
         "--snapshots", tmp_path / "snaps", "--samples", tmp_path / "samples"],
        cwd=ROOT, env={**os.environ, "DISPLAY": display}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        window = wait_for(lambda: xdotool(display, "search", "--name", "Digit reader").stdout.split(),
                          60, "the window")[0]
    except AssertionError:
        process.kill()
        raise AssertionError(f"no window; the app said: {process.communicate()}")
    yield process, window, predictions, tmp_path
    if process.poll() is None:
        process.kill()
        process.wait()


def test_click_toggles_trackbar_sets_threshold_keys_work_and_q_quits(display, window_app):
    process, window, predictions, tmp_path = window_app
    wait_for(lambda: len(records(predictions)) >= 5, 30, "first predictions")
    assert all(r["threshold"] == 0 for r in records(predictions))

    # A left click on the video turns inference off: no more records ...
    xdotool(display, "mousemove", "--window", window, 320, 240, "click", "1")
    time.sleep(1.0)
    stopped_at = len(records(predictions))
    time.sleep(1.5)
    assert len(records(predictions)) == stopped_at
    # ... and a second click turns it back on. (Once in a few dozen CI runs the click seemed
    # not to arrive: it is sent once more before the test gives up, saying what the app did.)
    for attempt in range(2):
        xdotool(display, "mousemove", "--window", window, 320, 240, "click", "1")
        try:
            wait_for(lambda: len(records(predictions)) > stopped_at + 3, 5, "inference back on")
            break
        except AssertionError:
            if attempt == 1 or process.poll() is not None:
                state = "running" if process.poll() is None else f"exited: {process.communicate()}"
                raise AssertionError(f"inference not back on after a second click; the app is {state}")
    frames = [r["frame"] for r in records(predictions)]
    assert any(b - a > 5 for a, b in zip(frames, frames[1:])), "no pause in the records"

    # A digit key saves the model input with that label (when a digit is in view).
    def save_sample():
        press(display, window, "3")
        time.sleep(0.3)
        return list((tmp_path / "samples" / "3").glob("*.png"))
    wait_for(save_sample, 15, "a sample")

    # The trackbar sits under the video; a click to the right of its handle moves it up.
    geometry = dict(line.split("=") for line in
                    xdotool(display, "getwindowgeometry", "--shell", window).stdout.split())
    width, height = int(geometry["WIDTH"]), int(geometry["HEIGHT"])
    xdotool(display, "mousemove", "--window", window, width * 9 // 10, height - 15, "click", "1")
    wait_for(lambda: records(predictions)[-1]["threshold"] > 0, 10, "threshold to change")

    # Space toggles like a click; s saves a snapshot; a digit key saves a labelled sample;
    # m switches to whole numbers; q quits with status 0.
    press(display, window, "s")
    wait_for(lambda: list((tmp_path / "snaps").glob("*-frame.png")), 10, "a snapshot")
    press(display, window, "m")
    wait_for(lambda: "number" in records(predictions)[-1], 10, "number mode")
    press(display, window, "space")
    time.sleep(1.0)
    paused = len(records(predictions))
    time.sleep(1.0)
    assert len(records(predictions)) == paused
    press(display, window, "q")
    assert process.wait(timeout=20) == 0
    assert "frames" in process.stdout.read()


def test_ctrl_c_in_the_live_loop_exits_130_with_the_predictions_flushed(display, window_app):
    process, window, predictions, _ = window_app
    try:
        wait_for(lambda: len(records(predictions)) >= 5, 30, "first predictions")
    except AssertionError:
        process.kill()
        raise AssertionError(f"{process.poll()} {process.communicate()}")
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=20) == 130
    assert "Traceback" not in process.stderr.read()
    written = records(predictions)       # every line is whole JSON
    assert [r["frame"] for r in written] == list(range(len(written)))
    assert not xdotool(display, "search", "--name", "Digit reader").stdout.strip()


def window_geometry(display, window):
    fields = dict(line.split("=") for line in
                  xdotool(display, "getwindowgeometry", "--shell", window).stdout.split())
    return {key: int(value) for key, value in fields.items() if key != "WINDOW"}


def screenshot(display):
    png = subprocess.run(["import", "-window", "root", "png:-"], capture_output=True, timeout=30,
                         env={**os.environ, "DISPLAY": display}).stdout
    return cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)


def test_a_12_megapixel_photo_fits_the_screen_and_is_read(laptop_screen, mnist_npz, tmp_path):
    with np.load(mnist_npz) as data:
        digit = sc.mnist_alpha(data["x_test"][0])               # a 7
    photo = tmp_path / "phone.jpg"
    cv2.imwrite(str(photo), sc.same_scene((4032, 3024), digit, seed=3))
    predictions = tmp_path / "photo.jsonl"
    process = subprocess.Popen(
        [sys.executable, str(MAIN), "--source", photo, "--no-eval", "--predictions", predictions],
        cwd=ROOT, env={**os.environ, "DISPLAY": laptop_screen}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        window = wait_for(lambda: xdotool(laptop_screen, "search", "--name", "Digit reader")
                          .stdout.split(), 60, "the window")[0]
        wait_for(lambda: len(records(predictions)) >= 3, 30, "first answers")
        assert records(predictions)[-1]["digit"] == 7
        geometry = window_geometry(laptop_screen, window)
        assert geometry["X"] + geometry["WIDTH"] <= 1600, geometry
        assert geometry["Y"] + geometry["HEIGHT"] <= 1000, geometry

        # The answer, drawn in green on its dark box to the right of the ROI, is on screen.
        scale = main.display_scale((3024, 4032), main.DEFAULT_WINDOW_SIZE)
        x, y, w, h = main.scaled(main.centered_roi((3024, 4032)), scale)
        left, top = geometry["X"] + x + w + 4, geometry["Y"] + y

        def green_answer():
            answer_box = screenshot(laptop_screen)[top:top + h // 2, left:geometry["X"] + geometry["WIDTH"]]
            return np.count_nonzero(np.all(answer_box == main.GREEN, axis=2)) > 100
        wait_for(green_answer, 15, "the green answer beside the ROI, on screen")

        # A click toggles inference off and on; q quits with status 0.
        xdotool(laptop_screen, "mousemove", "--window", window, x + w // 2, y + h // 2, "click", "1")
        time.sleep(1.0)
        stopped_at = len(records(predictions))
        time.sleep(1.0)
        assert len(records(predictions)) == stopped_at
        xdotool(laptop_screen, "mousemove", "--window", window, x + w // 2, y + h // 2, "click", "1")
        wait_for(lambda: len(records(predictions)) > stopped_at, 10, "inference back on")
        press(laptop_screen, window, "q")
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
