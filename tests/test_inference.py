"""The NumPy forward pass against Keras, the reference, and a live path free of TensorFlow."""

import json
import zipfile

import cv2
import keras
import numpy as np
import pytest

import main
import synthetic_camera as sc
from conftest import assert_clean_error, run_main


@pytest.fixture(scope="module")
def camera_inputs(camera_video):
    """Model inputs as the live path makes them from camera-like frames."""
    video, _ = camera_video
    capture, inputs = cv2.VideoCapture(str(video)), []
    while len(inputs) < 200:
        ok, frame = capture.read()
        if not ok:
            break
        model_input = main.preprocess_frame(frame).model_input
        if model_input is not None:
            inputs.append(model_input)
    capture.release()
    assert len(inputs) >= 100
    return np.stack(inputs)


@pytest.fixture(scope="module")
def finetuned_model(mnist, tmp_path_factory):
    """The committed model fine-tuned a little on a user's style, saved as --finetune saves it."""
    (x_train, y_train), _ = mnist
    samples = tmp_path_factory.mktemp("samples")
    sc.write_user_samples(samples, main.mnist_input_from_mask, per_digit=5, seed=3)
    x_samples, y_samples = main.load_samples(samples)
    tuned = main.finetune_model(main.load_keras_model(main.DEFAULT_MODEL), x_samples, y_samples,
                                x_train, y_train, epochs=1, mnist_images=2000, verbose=0)
    path = tmp_path_factory.mktemp("tuned") / "tuned.keras"
    main.save_model_atomically(tuned, path)
    return path


@pytest.mark.parametrize("which", ["committed", "freshly trained", "fine-tuned"])
def test_numpy_probabilities_equal_keras_predict(which, small_model, finetuned_model, mnist,
                                                 camera_inputs):
    path = {"committed": main.DEFAULT_MODEL, "freshly trained": small_model[1],
            "fine-tuned": finetuned_model}[which]
    _, (x_test, _) = mnist
    images = np.concatenate([main.scale_pixels(x_test[:1000]), camera_inputs])
    reference = keras.saving.load_model(path, compile=False).predict(images, verbose=0)
    ours = main.load_model(path)
    assert isinstance(ours, main.NumpyMLP)
    np.testing.assert_allclose(ours.probabilities(images), reference, rtol=0, atol=1e-5)
    # One image at a time, as the live loop asks, gives the same answers as the batch.
    np.testing.assert_allclose(np.concatenate([ours.probabilities(x[None]) for x in images[:50]]),
                               reference[:50], rtol=0, atol=1e-5)


def test_the_keras_twin_in_memory_equals_the_file(small_model):
    result, path = small_model
    x = np.random.default_rng(2).random((20, 28, 28), dtype=np.float32)
    np.testing.assert_array_equal(main.NumpyMLP.from_keras(result.model).probabilities(x),
                                  main.load_model(path).probabilities(x))


def test_softmax_is_stable_for_huge_activations():
    rng = np.random.default_rng(0)
    mlp = main.NumpyMLP(rng.normal(0, 50, (784, 16)), np.zeros(16), rng.normal(0, 50, (16, 10)),
                        np.zeros(10))
    probabilities = mlp.probabilities(np.ones((3, 28, 28), np.float32))
    assert np.isfinite(probabilities).all()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)


IMPORT_TIMES = ("-X", "importtime")


def imported_modules(result):
    """Top-level module names from `python -X importtime` output."""
    names = set()
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


def test_the_live_path_and_the_evaluation_never_import_tensorflow(mnist_npz, tmp_path):
    rng = np.random.default_rng(5)
    image = tmp_path / "digit.png"
    with np.load(mnist_npz) as data:
        cv2.imwrite(str(image), sc.camera_frame(sc.random_scene(rng, 640, 480),
                                                sc.mnist_alpha(data["x_test"][0]), rng))
    out = tmp_path / "p.jsonl"
    args = ["--source", image, "--headless", "--predictions", out, "--reports", tmp_path / "r",
            "--data", mnist_npz]
    for extra in (["--evaluate"], ["--multi", "--no-eval"]):
        result = run_main(*args, *extra, python_flags=IMPORT_TIMES)
        assert result.returncode == 0, result.stderr[-2000:]
        modules = imported_modules(result)
        assert {"cv2", "numpy", "h5py"} <= modules     # the check itself sees imports
        assert not modules & {"tensorflow", "keras", "jax", "torch"}, extra
    assert json.loads((tmp_path / "r" / "metrics.json").read_text())["accuracy"] > 0.985
    assert sc.read_predictions(out)[0]["number"] == "7"


def other_architecture(path):
    """A valid Keras model that maps 28x28 to 10 digits, but with two hidden layers."""
    model = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(),
                              keras.layers.Dense(32, activation="relu"),
                              keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    model.save(path)
    return model


def test_another_architecture_falls_back_to_keras_with_a_note(tmp_path, capsys):
    path = tmp_path / "deeper.keras"
    model = other_architecture(path)
    loaded = main.load_model(path)
    assert isinstance(loaded, main.KerasClassifier)
    assert "loading it with Keras" in capsys.readouterr().out
    x = np.random.default_rng(1).random((4, 28, 28), dtype=np.float32)
    np.testing.assert_allclose(loaded.probabilities(x), model.predict(x, verbose=0), atol=1e-5)


def test_another_layout_of_the_weights_falls_back_to_keras(small_model, tmp_path):
    _, good = small_model
    path = tmp_path / "renamed.keras"
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(path, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "config.json":   # as if another version named the layers
                data = data.replace(b'"dense"', b'"hidden"').replace(b'"dense_1"', b'"output"')
            target.writestr(item, data)
    with pytest.raises(main.ModelLayoutError, match="lacks"):
        main.NumpyMLP.from_file(path)
    result = run_main("--model", path, "--no-live", "--no-eval")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("note:") == 1 and "loading it with Keras" in result.stdout


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 half a model", b"not a zip at all"])
def test_broken_files_get_the_retrain_hint_without_tensorflow(tmp_path, content):
    path = tmp_path / "model.keras"
    path.write_bytes(content)
    result = run_main("--model", path, "--no-live", "--no-eval", python_flags=IMPORT_TIMES)
    assert_clean_error(result, str(path), "--retrain")
    assert "tensorflow" not in imported_modules(result)
