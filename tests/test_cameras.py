"""Cameras on every desktop, without the hardware: a fake capture stands in for
cv2.VideoCapture, and sys.platform is set to the system under test."""

import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest

import main
from conftest import ROOT, run_main


class FakeCameras:
    """What is plugged in: {(index, backend constant): "frames" or "silent"}, and a log of
    every capture opened and every property set."""

    def __init__(self, cameras, frame_size=(640, 480)):
        self.cameras, self.frame_size = cameras, frame_size
        self.opened, self.settings = [], []

    def capture(self, index, api=cv2.CAP_ANY):
        fakes = self

        class Capture:
            def __init__(self):
                fakes.opened.append((index, api))
                self.kind = fakes.cameras.get((index, api))

            def isOpened(self):
                return self.kind is not None

            def read(self):
                if self.kind != "frames":
                    return False, None
                width, height = fakes.frame_size
                return True, np.full((height, width, 3), 200, np.uint8)

            def set(self, prop, value):
                fakes.settings.append((prop, value))
                return True

            def getBackendName(self):
                return {cv2.CAP_DSHOW: "DSHOW", cv2.CAP_MSMF: "MSMF"}.get(api, "V4L2")

            def release(self):
                pass
        return Capture()


@pytest.fixture
def cameras(monkeypatch):
    def install(cameras, **options):
        fakes = FakeCameras(cameras, **options)
        monkeypatch.setattr(main.cv2, "VideoCapture", fakes.capture)
        monkeypatch.setattr(main, "CAMERA_OPEN_SECONDS", 0.3)
        monkeypatch.setattr(main, "PROBE_SECONDS", 0.1)
        return fakes
    return install


DSHOW, MSMF, ANY, V4L2 = cv2.CAP_DSHOW, cv2.CAP_MSMF, cv2.CAP_ANY, cv2.CAP_V4L2


def test_windows_tries_directshow_then_media_foundation_elsewhere_the_default():
    assert main.camera_backends("win32") == ["dshow", "msmf"]
    assert main.camera_backends("linux") == ["any"]
    assert main.camera_backends("darwin") == ["any"]
    assert main.camera_backends("win32", "msmf") == ["msmf"]


def test_windows_falls_back_to_media_foundation_when_directshow_fails(cameras):
    fakes = cameras({(0, MSMF): "frames"})
    source = main.open_camera(0, platform="win32")
    assert fakes.opened == [(0, DSHOW), (0, MSMF)]
    assert source.read().shape == (480, 640, 3)


def test_the_backend_option_is_the_only_one_tried(cameras):
    fakes = cameras({(0, DSHOW): "frames", (0, V4L2): "frames"})
    main.open_camera(0, backend="v4l2", platform="win32")
    assert fakes.opened == [(0, V4L2)]
    assert main.parse_args(["--backend", "v4l2"]).backend == "v4l2"
    assert run_main("--backend", "vfw", "--no-live").returncode == 2


@pytest.mark.parametrize("platform, advice", [
    ("win32", "close other apps that use the camera"),
    ("darwin", "Privacy & Security > Camera"),
    ("linux", "ls /dev/video*"),
])
def test_a_camera_that_opens_but_sends_nothing_gets_this_systems_hint(cameras, platform, advice):
    cameras({(0, DSHOW): "silent", (0, MSMF): "silent", (0, ANY): "silent"})
    with pytest.raises(main.UserError) as error:
        main.open_camera(0, platform=platform)
    message = str(error.value)
    assert "opened but sent no picture" in message and advice in message
    assert "--list-cameras" in message and error.value.status == 2


@pytest.mark.parametrize("platform, advice", [("win32", "--backend msmf"),
                                              ("darwin", "System Settings"),
                                              ("linux", "video group")])
def test_no_camera_at_all_gets_this_systems_hint(cameras, platform, advice):
    cameras({})
    with pytest.raises(main.UserError, match="no camera at index 2") as error:
        main.open_camera(2, platform=platform)
    assert advice in str(error.value)


@pytest.mark.parametrize("plugged, expected", [
    ({}, []),
    ({(0, ANY): "frames"}, ["camera 0: backend V4L2, 640x480"]),
    ({(0, ANY): "frames", (2, ANY): "frames", (1, ANY): "silent"},
     ["camera 0: backend V4L2, 640x480", "camera 2: backend V4L2, 640x480"]),
])
def test_list_cameras_names_each_working_one(cameras, plugged, expected):
    cameras(plugged)
    lines = main.list_cameras(platform="linux")
    if expected:
        assert lines == expected
    else:
        assert len(lines) == 1 and lines[0].startswith("no cameras found at indexes 0-9")


def test_list_cameras_on_this_machine_says_plainly_it_found_none():
    result = run_main("--list-cameras")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("no cameras found") and "Traceback" not in result.stderr


def test_camera_size_is_requested_and_the_status_shows_what_arrives(cameras):
    fakes = cameras({(0, ANY): "frames"}, frame_size=(1280, 720))
    source = main.open_camera(0, size=(1920, 1080), platform="linux")
    assert (cv2.CAP_PROP_FRAME_WIDTH, 1920) in fakes.settings
    assert (cv2.CAP_PROP_FRAME_HEIGHT, 1080) in fakes.settings
    frame = source.read()
    pre = main.preprocess_frame(frame)
    shown = main.draw_overlay(frame, pre, main.Reading(None, 0.0), fps=30.0,
                              source_size=frame.shape[1::-1][:2])
    assert main.status_text(30.0, frame.shape[1::-1][:2], 0).count("1280x720") == 1
    assert shown.shape == frame.shape
    assert main.parse_args(["--camera-size", "1280x720"]).camera_size == (1280, 720)
    assert run_main("--camera-size", "big", "--no-live").returncode == 2


def test_pressing_q_while_a_camera_opens_gives_up(cameras):
    cameras({(0, ANY): "silent"})
    calls = []

    def waiting(elapsed):
        calls.append(elapsed)
        return len(calls) >= 2
    with pytest.raises(KeyboardInterrupt):
        main.open_camera(0, platform="linux", waiting=waiting)
    assert len(calls) == 2


def msmf_setting_when_cv2_loads(preset):
    """Run `import main` as on Windows; return the MSMF variable as cv2 saw it on import."""
    script = textwrap.dedent(f"""
        import os, sys
        {'os.environ["OPENCV_VIDEOIO_MSMF_ENABLE_HW_TRANSFORMS"] = "1"' if preset else
         'os.environ.pop("OPENCV_VIDEOIO_MSMF_ENABLE_HW_TRANSFORMS", None)'}
        sys.platform = "win32"
        seen = []

        class Watch:
            def find_spec(self, name, path=None, target=None):
                if name == "cv2" and not seen:
                    seen.append(os.environ.get("OPENCV_VIDEOIO_MSMF_ENABLE_HW_TRANSFORMS"))
                return None
        sys.meta_path.insert(0, Watch())
        sys.path.insert(0, {str(ROOT)!r})
        import main
        print(seen[0])
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_on_windows_msmf_hardware_transforms_are_off_before_cv2_loads():
    assert msmf_setting_when_cv2_loads(preset=False) == "0"


def test_a_users_own_msmf_setting_is_kept():
    assert msmf_setting_when_cv2_loads(preset=True) == "1"


@pytest.mark.parametrize("environ, platform, outcome", [
    ({"DISPLAY": ":0"}, "linux", None),
    ({"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "wayland"}, "linux", "xcb"),
    ({"WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "wayland"}, "linux", "XWayland"),
    ({}, "linux", "no display"),
    ({}, "darwin", None),
    ({}, "win32", None),
])
def test_wayland_runs_the_window_through_xwayland_or_says_why_not(environ, platform, outcome):
    if outcome in (None, "xcb"):
        main.check_display(False, environ, platform)
        assert environ.get("QT_QPA_PLATFORM") == (outcome and "xcb")
    else:
        with pytest.raises(main.UserError, match=outcome) as error:
            main.check_display(False, environ, platform)
        assert "--headless" in str(error.value)


def test_a_users_own_qt_platform_is_kept_on_wayland():
    environ = {"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0", "QT_QPA_PLATFORM": "wayland"}
    main.check_display(False, environ, "linux")
    assert environ["QT_QPA_PLATFORM"] == "wayland"
