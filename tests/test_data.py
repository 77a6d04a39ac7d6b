"""Loading MNIST: the local npz path and every way a file can be wrong."""

import numpy as np
import pytest

import main
from conftest import assert_clean_error, fake_mnist_arrays, offline_env, run_main


def test_good_file_loads_with_its_shapes(tmp_path):
    path = tmp_path / "mnist.npz"
    np.savez(path, **fake_mnist_arrays())
    (x_train, y_train), (x_test, y_test) = main.load_mnist_npz(path)
    assert x_train.shape == (60, 28, 28) and y_train.shape == (60,)
    assert x_test.shape == (20, 28, 28) and y_test.shape == (20,)


def test_real_mnist_is_whole(mnist):
    (x_train, y_train), (x_test, y_test) = mnist
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert set(np.unique(y_test)) == set(range(10))


def test_pixels_scale_to_unit_float32():
    scaled = main.scale_pixels(np.array([[0, 128, 255]], np.uint8))
    assert scaled.dtype == np.float32
    assert scaled.min() == 0.0 and scaled.max() == 1.0


def test_validation_split_comes_from_training_data_only():
    x = np.arange(100).reshape(100, 1, 1)
    (x_fit, _), (x_val, _) = main.split_validation(x, np.zeros(100), 0.1, seed=3)
    assert len(x_val) == 10 and len(x_fit) == 90
    assert not set(x_fit.ravel()) & set(x_val.ravel())


def broken(kind):
    arrays = fake_mnist_arrays()
    if kind == "missing key":
        del arrays["y_test"]
    elif kind == "wrong shape":
        arrays["x_train"] = arrays["x_train"].reshape(60, 784)
    elif kind == "wrong dtype":
        arrays["x_test"] = arrays["x_test"].astype(np.float64)
    elif kind == "label out of range":
        arrays["y_train"][5] = 11
    elif kind == "label count mismatch":
        arrays["y_test"] = arrays["y_test"][:-1]
    return arrays


@pytest.mark.parametrize("kind, fragment", [
    ("missing key", "y_test"), ("wrong shape", "x_train has shape"),
    ("wrong dtype", "x_test has dtype float64"), ("label out of range", "outside 0-9"),
    ("label count mismatch", "y_test has shape"),
])
def test_malformed_npz_is_rejected_by_name(tmp_path, kind, fragment):
    path = tmp_path / "bad.npz"
    np.savez(path, **broken(kind))
    with pytest.raises(main.UserError, match=fragment):
        main.load_mnist_npz(path)


def test_missing_file_and_non_npz_are_rejected(tmp_path):
    with pytest.raises(main.UserError, match="not found"):
        main.load_mnist_npz(tmp_path / "nowhere.npz")
    text = tmp_path / "notes.npz"
    text.write_text("this is not a zip archive")
    with pytest.raises(main.UserError, match="not a readable .npz"):
        main.load_mnist_npz(text)
    truncated = tmp_path / "truncated.npz"
    np.savez(truncated, **fake_mnist_arrays())
    truncated.write_bytes(truncated.read_bytes()[:300])
    with pytest.raises(main.UserError, match="not a readable .npz"):
        main.load_mnist_npz(truncated)


@pytest.mark.parametrize("kind", ["missing key", "wrong dtype", "label out of range"])
def test_cli_reports_bad_data_on_one_line_with_status_2(tmp_path, kind):
    path = tmp_path / "bad.npz"
    np.savez(path, **broken(kind))
    result = run_main("--data", path, "--model", tmp_path / "m.keras", "--no-live")
    assert_clean_error(result, str(path))
    assert not (tmp_path / "m.keras").exists()


def test_cli_reads_mnist_npz_from_the_environment(tmp_path):
    result = run_main("--model", tmp_path / "m.keras", "--no-live",
                      env={"MNIST_NPZ": str(tmp_path / "absent.npz")})
    assert_clean_error(result, "absent.npz")


def test_failed_download_says_how_to_work_offline(tmp_path):
    result = run_main("--model", tmp_path / "m.keras", "--no-live", env=offline_env(tmp_path))
    assert_clean_error(result, "could not download MNIST", "--data")
