"""Shared fixtures: paths, the MNIST copy, a quickly trained small model, a camera-like video."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
MAIN = ROOT / "main.py"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import main  # noqa: E402
import synthetic_camera  # noqa: E402

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def run_main(*args, timeout=180, env=None, cwd=None, python_flags=()):
    """Run `python main.py ARGS` as a user would; returns the CompletedProcess."""
    return subprocess.run([sys.executable, *python_flags, str(MAIN), *map(str, args)],
                          capture_output=True,
                          text=True, timeout=timeout, cwd=cwd or ROOT,
                          env={**os.environ, **(env or {})})


def read_right(model, images, labels, least=0.0):
    """Which of the MNIST `images` the model reads as their labels, with more than `least`
    probability: test material that measures the camera or the row, not the model's doubts."""
    probabilities = model.probabilities(main.scale_pixels(images))
    return (probabilities.argmax(axis=1) == labels) & (probabilities.max(axis=1) > least)


def offline_env(home):
    """Environment in which Keras's MNIST download fails quickly, as it does offline (an
    unreachable proxy), with Keras's cache in `home` so that no earlier download is found."""
    proxy = "http://127.0.0.1:9"
    return {"MNIST_NPZ": "", "HOME": str(home), "KERAS_HOME": str(Path(home) / ".keras"),
            "HTTPS_PROXY": proxy, "HTTP_PROXY": proxy, "https_proxy": proxy, "http_proxy": proxy}


def assert_clean_error(result, *fragments, status=2):
    """A one-line message naming the problem, the right exit status and no traceback."""
    assert result.returncode == status, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment.lower() in errors[0].lower(), errors[0]


@pytest.fixture(scope="session")
def mnist_npz():
    path = os.environ.get("MNIST_NPZ")
    if not path or not Path(path).is_file():
        if IN_CI:
            pytest.fail("MNIST_NPZ must point at mnist.npz in CI")
        pytest.skip("MNIST_NPZ is not set to a local mnist.npz")
    return Path(path)


@pytest.fixture(scope="session")
def mnist(mnist_npz):
    return main.load_mnist_npz(mnist_npz)


def fake_mnist_arrays(n_train=60, n_test=20, seed=0):
    rng = np.random.default_rng(seed)
    return {"x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
            "y_train": rng.integers(0, 10, n_train).astype(np.uint8),
            "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
            "y_test": rng.integers(0, 10, n_test).astype(np.uint8)}


@pytest.fixture(scope="session")
def small_model(mnist, tmp_path_factory):
    """One epoch on 4,000 training images: quick, and already a real digit classifier."""
    (x_train, y_train), _ = mnist
    result = main.train_model(x_train[:4000], y_train[:4000], epochs=1, seed=0, verbose=0)
    path = tmp_path_factory.mktemp("small_model") / "small.keras"
    main.save_model_atomically(result.model, path, {"history": result.history,
                                                    "seconds": result.seconds, "epochs": 1})
    return result, path


@pytest.fixture(scope="session")
def committed_model():
    return main.load_model(main.DEFAULT_MODEL)


@pytest.fixture(scope="session")
def camera_video(mnist_npz, tmp_path_factory):
    """A camera-like MJPG video of 200 MNIST test digits and blank paper, with its labels."""
    path = tmp_path_factory.mktemp("video") / "digits.avi"
    labels = synthetic_camera.mnist_test_video(path, mnist_npz, count=200, seed=1)
    return path, labels
