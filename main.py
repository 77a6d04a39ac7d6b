"""Live handwritten-digit reader: hold a digit, or a whole number, written on paper up to
a webcam, and read it.

The script runs in three steps:

1. Model: loads ``model.keras`` (beside this file), or trains a Keras MLP on MNIST when it
   is missing (or with ``--retrain``) and saves it atomically. Reading needs no Keras: the
   trained network runs in NumPy.
2. Evaluation: on the MNIST test set, writes plots, ``classification_report.txt`` and
   ``metrics.json`` to ``reports/`` when they are missing or stale.
3. Live recognition: an OpenCV window with the camera feed, a centred square region of
   interest (ROI) whose content the model reads (or a 3:1 band read as a whole number),
   a "Threshold" trackbar (0 = automatic) and a left click that toggles inference.

Usage::

    python main.py                       # webcam 0
    python main.py --list-cameras        # which webcams work, and their backends
    python main.py --source photo.jpg    # a video or image file, of any size
    python main.py --source clip.avi --headless --multi --predictions out.jsonl
    python main.py --data ~/mnist.npz    # offline: a local copy of MNIST
    python main.py --help
"""

import argparse
import collections
import functools
import hashlib
import itertools
import json
import os
import signal
import statistics
import sys
import threading
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OPENCV_LOG_LEVEL", "FATAL")  # our own one-line messages say what went wrong
if sys.platform == "win32":
    # Media Foundation's hardware transforms make many webcams take seconds to a minute to
    # open (opencv#17687, #26495; the fix of opencv#20327). Read when cv2 loads, so set here.
    os.environ.setdefault("OPENCV_VIDEOIO_MSMF_ENABLE_HW_TRANSFORMS", "0")

import cv2
import numpy as np
# Keras (and TensorFlow under it), sklearn and matplotlib are imported inside the functions
# that train, evaluate and plot: reading the camera needs none of them, and they cost seconds.

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # keep TensorFlow's start-up chatter out

HERE = Path(__file__).resolve().parent
DEFAULT_MODEL = HERE / "model.keras"
DEFAULT_REPORTS = Path("reports")
TRAINING_INFO_NAME = "training.json"  # stored inside the .keras zip, beside Keras's own files

EXIT_USAGE = 2
EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130
DIGITS = list(range(10))


class UserError(Exception):
    """A problem the user can fix; main() prints it on one line and exits with `status`."""

    def __init__(self, message, status=EXIT_USAGE):
        super().__init__(message)
        self.status = status


def use_system_fonts_for_qt():
    # The Qt inside opencv-python ships no fonts, and cv2 points QT_QPA_FONTDIR at its own
    # empty folder: without this the trackbar's label is blank. A folder the user set is kept.
    if os.path.isdir(os.environ.get("QT_QPA_FONTDIR", "")):
        return
    for folder in ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/truetype",
                   "/usr/share/fonts", "/System/Library/Fonts", "C:/Windows/Fonts"):
        if os.path.isdir(folder):
            os.environ["QT_QPA_FONTDIR"] = folder
            return


use_system_fonts_for_qt()
# Our images are small (a 240 px ROI, 28 px digits): OpenCV's worker threads gain nothing
# there and only fight TensorFlow's for the cores (measured: 4.1 -> 3.0 ms a frame here).
cv2.setNumThreads(1)


class CtrlC:
    """Turns Ctrl-C into a request that our own loops check.

    TensorFlow's data pipeline can swallow the KeyboardInterrupt as "end of data" (and a
    half-trained model would then be saved), and Qt callbacks can swallow it too. Here the
    request is noted, `on_stop` runs (e.g. to stop fit() after the current batch), and
    KeyboardInterrupt is raised on leaving the block, after our cleanup.
    """

    def __init__(self, on_stop=None):
        self.on_stop, self.requested, self.previous = on_stop, False, None

    def handle(self, signum, frame):
        self.requested = True
        if self.on_stop:
            self.on_stop()

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self.handle)
        return self

    def __exit__(self, kind, error, traceback):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        if self.requested and kind is None:
            raise KeyboardInterrupt


# --------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------

MNIST_KEYS = ("x_train", "y_train", "x_test", "y_test")


def check_mnist_arrays(arrays, source):
    """Raise UserError naming the first thing that makes `arrays` not MNIST-shaped."""
    missing = [key for key in MNIST_KEYS if key not in arrays]
    if missing:
        raise UserError(f"{source}: missing key(s) {', '.join(missing)}; "
                        f"an MNIST npz holds {', '.join(MNIST_KEYS)}")
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim != 3 or x.shape[1:] != (28, 28) or len(x) == 0:
            raise UserError(f"{source}: x_{split} has shape {x.shape}, expected (N, 28, 28)")
        if y.shape != (len(x),):
            raise UserError(f"{source}: y_{split} has shape {y.shape}, expected ({len(x)},)")
        if x.dtype != np.uint8:
            raise UserError(f"{source}: x_{split} has dtype {x.dtype}, expected uint8")
        if not np.issubdtype(y.dtype, np.integer):
            raise UserError(f"{source}: y_{split} has dtype {y.dtype}, expected integer labels")
        if y.min() < 0 or y.max() > 9:
            raise UserError(f"{source}: y_{split} has labels outside 0-9 "
                            f"(found {y.min()}..{y.max()})")


def load_mnist_npz(path):
    """Load and check a local mnist.npz; returns (x_train, y_train), (x_test, y_test)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(f"MNIST file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except Exception as exc:  # zipfile, pickle and OS errors all mean "not a usable npz"
        raise UserError(f"{path} is not a readable .npz file ({type(exc).__name__}: {exc})")
    check_mnist_arrays(arrays, path)
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])


def download_mnist():
    import keras

    try:
        return keras.datasets.mnist.load_data()
    except Exception as exc:
        raise UserError(f"could not download MNIST ({first_line(exc)}); "
                        "pass --data PATH to a local mnist.npz or set MNIST_NPZ")


@functools.lru_cache(maxsize=1)  # training and evaluation in one run read it once
def load_mnist(data_path=None):
    """MNIST from `data_path` when given, else Keras's download (cached in ~/.keras)."""
    return load_mnist_npz(data_path) if data_path else download_mnist()


def scale_pixels(images):
    # Into a float32 array made up front: 20x faster than astype() on a training set's epochs.
    return np.divide(images, np.float32(255), out=np.empty(np.shape(images), np.float32))


def one_hot(labels):
    return np.eye(10, dtype=np.float32)[labels]


def split_validation(x, y, fraction, seed):
    """A seeded random split of the training set: (x_fit, y_fit), (x_val, y_val)."""
    order = np.random.default_rng(seed).permutation(len(x))
    n_val = max(1, int(round(len(x) * fraction)))
    val, fit = order[:n_val], order[n_val:]
    return (x[fit], y[fit]), (x[val], y[val])


# --------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------

# Twice LeCun's classic 800 hidden units: room for the styles and touching pairs beside
# MNIST's own digits (real photos: 58.8 of 60 on average over 8 trainings, 58.3 with 800).
# Batch 256 keeps 10 epochs near a minute on 2 cores.
HIDDEN_UNITS = 1600
DROPOUT = 0.2
BATCH_SIZE = 256
LEARNING_RATE = 3e-3
MIN_STEPS_PER_EPOCH = 200


def batch_size_for(examples, largest=BATCH_SIZE):
    """Smaller batches for small data sets, so that an epoch still makes ~200 updates."""
    return int(np.clip(examples // MIN_STEPS_PER_EPOCH, 32, largest))


def build_model(hidden_units=HIDDEN_UNITS, dropout=DROPOUT, learning_rate=LEARNING_RATE):
    import keras
    from keras import layers

    model = keras.Sequential([
        keras.Input(shape=(28, 28)),
        layers.Flatten(),
        layers.Dense(hidden_units, activation="relu"),
        layers.Dropout(dropout),
        layers.Dense(10, activation="softmax"),
    ], name="mnist_mlp")
    return compile_for_training(model, learning_rate)


def compile_for_training(model, learning_rate):
    import keras

    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="categorical_crossentropy",
                  metrics=[keras.metrics.MeanMetricWrapper(digit_accuracy, name="accuracy")])
    return model


def digit_accuracy(targets, probabilities):
    """Share of a batch's digits read right; the "two digits" examples are left out."""
    from keras import ops

    is_digit = ops.cast(ops.max(targets, axis=-1) > 0.5, "float32")
    right = ops.cast(ops.argmax(targets, axis=-1) == ops.argmax(probabilities, axis=-1), "float32")
    return ops.sum(right * is_digit) / ops.maximum(ops.sum(is_digit), 1.0)


def fit_interruptibly(model, *args, **kwargs):
    """model.fit(), where Ctrl-C stops after the current batch and then raises KeyboardInterrupt."""
    with CtrlC(on_stop=lambda: setattr(model, "stop_training", True)):
        return model.fit(*args, **kwargs)


def random_affines(rng, count, max_rotation=12.0, scale_range=(0.9, 1.1), aspect_range=(0.65, 1.3),
                   max_shift=1.5, max_shear=0.15):
    """`count` 2x3 matrices that tilt, resize, widen or narrow and shear a 28x28 image about
    its centre, then shift it."""
    angle = np.deg2rad(rng.uniform(-max_rotation, max_rotation, count))
    scale_y = rng.uniform(*scale_range, count)
    scale_x = scale_y * rng.uniform(*aspect_range, count)
    shear = rng.uniform(-max_shear, max_shear, count)
    cos, sin = np.cos(angle), np.sin(angle)
    # rotation @ scale @ shear, written out for the whole batch
    linear = np.stack([np.stack([cos * scale_x, cos * scale_x * shear - sin * scale_y], -1),
                       np.stack([sin * scale_x, sin * scale_x * shear + cos * scale_y], -1)], 1)
    centre = np.array([14.0, 14.0])
    offset = centre - linear @ centre + rng.uniform(-max_shift, max_shift, (count, 2))
    return np.concatenate([linear, offset[:, :, None]], axis=2).astype(np.float32)


def neighbourhood(images, reduce):
    """`reduce` (np.maximum or np.minimum) over each pixel's 2x2 neighbourhood, for a batch."""
    padded = np.pad(images, ((0, 0), (1, 0), (1, 0)))
    return reduce.reduce([padded[:, 1:, 1:], padded[:, :-1, 1:], padded[:, 1:, :-1],
                          padded[:, :-1, :-1]])


def augment_digits(images, rng, stroke_change=0.3):
    """Camera-like variants of 28x28 uint8 digits: tilt, size, width, position and stroke."""
    matrices = random_affines(rng, len(images))
    warped = np.stack([cv2.warpAffine(image, matrix, (28, 28), flags=cv2.INTER_LINEAR)
                       for image, matrix in zip(images, matrices)])
    stroke = rng.random(len(images))
    thicker, thinner = stroke < stroke_change / 2, (stroke >= stroke_change / 2) & (stroke < stroke_change)
    warped[thicker] = neighbourhood(warped[thicker], np.maximum)
    warped[thinner] = neighbourhood(warped[thinner], np.minimum)
    return warped


STYLE_SHARE = 0.5       # of the 7s crossed, 1s flagged, 4s closed: styles MNIST rarely shows
PAIR_SHARE = 0.1        # "two digits at once" examples, beside the digits of an epoch
PLAIN_SHARE = 0.25      # of an epoch's examples not tilted, resized or restroked


def with_crossbar(image, rng):
    """A 7 as much of Europe writes it: a short bar across the stem near mid-height, and
    often a serif hanging from the top bar."""
    ys, xs = np.nonzero(image > 127)
    height = ys.max() - ys.min()
    row = int(ys.min() + rng.uniform(0.4, 0.65) * height)
    stem = xs[ys == row]
    if not len(stem):
        return image
    centre = stem.mean() + rng.uniform(-0.15, 0.1) * height
    half, tilt = rng.uniform(0.15, 0.3) * height, rng.uniform(-0.1, 0.1) * height
    crossed = image.copy()
    thickness = int(rng.integers(1, 3))
    cv2.line(crossed, (int(centre - half), int(row + tilt)), (int(centre + half), int(row - tilt)),
             255, thickness, cv2.LINE_AA)
    if rng.random() < 0.5:   # and the small serif hanging from the bar's left end
        top = ys <= ys.min() + 0.2 * height
        start = (int(xs[top].min()), int(ys[top][np.argmin(xs[top])]))
        end = (int(start[0] - rng.uniform(0, 0.08) * height), int(start[1] + rng.uniform(0.12, 0.25) * height))
        cv2.line(crossed, start, end, 255, thickness, cv2.LINE_AA)
    return crossed


def with_flag(image, rng):
    """A 1 with the long flag at its top that many people write, and sometimes a base."""
    ys, xs = np.nonzero(image > 127)
    top, height = ys.min(), ys.max() - ys.min()
    x_top = int(xs[ys == top].mean())
    angle, length = np.deg2rad(rng.uniform(25, 60)), rng.uniform(0.25, 0.45) * height
    flagged = image.copy()
    cv2.line(flagged, (x_top, int(top)), (int(x_top - length * np.cos(angle)),
                                          int(top + length * np.sin(angle))), 255, 2, cv2.LINE_AA)
    if rng.random() < 0.3:
        x_bottom = int(xs[ys == ys.max()].mean())
        half = rng.uniform(0.15, 0.3) * height
        cv2.line(flagged, (int(x_bottom - half), int(ys.max())),
                 (int(x_bottom + half), int(ys.max())), 255, 2, cv2.LINE_AA)
    return flagged


def with_closed_top(image, rng):
    """A 4 with its top closed, as many people write it: the open stroke's top joined to
    the stem's."""
    ys, xs = np.nonzero(image > 127)
    upper = ys <= ys.min() + 0.35 * (ys.max() - ys.min())
    middle = (xs.min() + xs.max()) / 2
    left, right = upper & (xs < middle), upper & (xs >= middle)
    if not left.any() or not right.any():
        return image
    start, end = ((int(xs[side][np.argmin(ys[side])]), int(ys[side].min())) for side in (left, right))
    closed = image.copy()
    cv2.line(closed, start, end, 255, int(rng.integers(1, 3)), cv2.LINE_AA)
    return closed


def with_styles(x, y, rng):
    """MNIST with a share of its 7s crossed, its 1s flagged and its 4s closed at the top,
    framed again as MNIST is."""
    styled = x.copy()
    for digit, restyle in ((7, with_crossbar), (1, with_flag), (4, with_closed_top)):
        for i in np.flatnonzero((y == digit) & (rng.random(len(y)) < STYLE_SHARE)):
            styled[i] = frame_like_mnist(restyle(x[i], rng))
    return styled


def touching_pairs(x, rng, count):
    """Two digits written so close that they touch, framed as one: the model learns to doubt
    them (uniform targets), so that reading a row can tell one wide digit from two."""
    pairs = np.zeros((count, 28, 28), np.uint8)
    for k in range(count):
        left, right = (crop_to_ink(x[i]) for i in rng.choice(len(x), 2))
        h = max(left.shape[0], right.shape[0])
        gap = int(rng.integers(-3, 2))                      # overlapping to just touching
        canvas = np.zeros((h, left.shape[1] + right.shape[1] + 3), np.uint8)
        canvas[h - left.shape[0]:, :left.shape[1]] = left
        x0 = left.shape[1] + gap
        region = canvas[h - right.shape[0]:, x0:x0 + right.shape[1]]
        np.maximum(region, right[:, :region.shape[1]], out=region)
        pairs[k] = frame_like_mnist(canvas)
    return pairs


def augmented_epochs(x, y, epochs, seed):
    """`epochs` freshly shuffled and augmented copies of (x, y), one after the other, each
    with PAIR_SHARE "two digits" examples mixed in; targets are one-hot, uniform for pairs.
    Styles and pairs are made once; tilt, size and stroke every epoch.

    Made up front in one vectorised pass: fitting plain arrays runs twice as fast here as
    feeding Keras from a Python generator or PyDataset, which fight the trainer for 2 cores.
    """
    rng = np.random.default_rng(seed)
    examples = np.concatenate([with_styles(x, y, rng),
                               touching_pairs(x, rng, max(1, int(PAIR_SHARE * len(x))))])
    pairs = np.full((len(examples) - len(y), 10), 0.1, np.float32)   # "no digit more than another"
    targets = np.concatenate([one_hot(y), pairs])
    images, epoch_targets = [], []
    for _ in range(epochs):
        order = rng.permutation(len(examples))
        epoch = examples[order]
        # A share stays as written: MNIST's own framing is what the test set has.
        moved = rng.random(len(epoch)) >= PLAIN_SHARE
        epoch[moved] = augment_digits(epoch[moved], rng)
        images.append(epoch)
        epoch_targets.append(targets[order])
    return scale_pixels(np.concatenate(images)), np.concatenate(epoch_targets)


@dataclass
class TrainingResult:
    model: object
    history: dict
    seconds: float          # all of it: augmentation, fitting and validation
    epochs: int
    epoch_seconds: list     # fitting and validation, per epoch


def train_model(x_train, y_train, epochs=10, seed=0, learning_rate=LEARNING_RATE,
                validation_fraction=0.1, patience=3, verbose=1):
    """Train the MLP with augmentation; EarlyStopping on a validation split restores the best."""
    import keras

    keras.utils.set_random_seed(seed)
    (x_fit, y_fit), (x_val, y_val) = split_validation(x_train, y_train, validation_fraction, seed)
    started = time.perf_counter()
    x_epochs, y_epochs = augmented_epochs(x_fit, y_fit, epochs, seed)
    epoch_size = len(x_epochs) // epochs
    batch_size = batch_size_for(epoch_size)
    steps_per_epoch = epoch_size // batch_size
    # Cosine decay over the whole budget: big steps first, fine-tuning steps by the last epoch.
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, alpha=0.02,
                                                      decay_steps=steps_per_epoch * epochs)
    model = build_model(learning_rate=schedule)
    stop_early = keras.callbacks.EarlyStopping(monitor="val_accuracy", mode="max", patience=patience,
                                               restore_best_weights=True, verbose=verbose)
    epoch_started, epoch_seconds = [], []
    stopwatch = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: epoch_started.append(time.perf_counter()),
        on_epoch_end=lambda epoch, logs: epoch_seconds.append(time.perf_counter() - epoch_started[-1]))
    # Without shuffling, epoch k of fit() reads the k-th augmented copy.
    fitted = fit_interruptibly(model, x_epochs, y_epochs, batch_size=batch_size, epochs=epochs,
                               steps_per_epoch=steps_per_epoch, shuffle=False,
                               validation_data=(scale_pixels(x_val), one_hot(y_val)),
                               callbacks=[stop_early, stopwatch], verbose=verbose)
    seconds = time.perf_counter() - started
    history = {name: [float(v) for v in values] for name, values in fitted.history.items()}
    return TrainingResult(model, history, seconds, len(history["loss"]), epoch_seconds)


def describe_training(result):
    h = result.history
    best = int(np.argmax(h["val_accuracy"]))
    return (f"trained {result.epochs} epoch(s) in {result.seconds:.1f} s; best epoch {best + 1}: "
            f"accuracy {h['accuracy'][best]:.4f}, loss {h['loss'][best]:.4f}, "
            f"val_accuracy {h['val_accuracy'][best]:.4f}, val_loss {h['val_loss'][best]:.4f}")


def inference_copy(model):
    """The same network without optimizer state: a third of the file size, same predictions."""
    import keras

    copy = keras.Sequential.from_config(model.get_config())  # uncompiled: no optimizer
    copy.set_weights(model.get_weights())
    return copy


def save_model_atomically(model, path, training_info=None):
    """Write to a temporary file in the same folder, then rename it over `path`.

    An interrupted or failed save leaves the previous model untouched and no temporary file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.stem}.{os.getpid()}.tmp.keras")
    try:
        inference_copy(model).save(temporary)
        if training_info is not None:
            with zipfile.ZipFile(temporary, "a") as archive:
                archive.writestr(TRAINING_INFO_NAME, json.dumps(training_info, indent=1))
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def read_training_info(path):
    """The training history and time stored in the model file, or {} for a model without them."""
    try:
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read(TRAINING_INFO_NAME))
    except (KeyError, OSError, zipfile.BadZipFile, ValueError):
        return {}


class ModelLayoutError(Exception):
    """A readable model file that is not this app's MLP as Keras 3 lays it out."""


def mlp_dense_layer_names(layers):
    """The (hidden, output) Dense layer names of a Sequential's layer configs, if it is our MLP.

    Our MLP: 28x28 input -> Flatten -> Dense(relu) -> optional Dropout (the identity when
    reading) -> Dense(10, softmax). Anything else raises ModelLayoutError.
    """
    kinds = [layer.get("class_name") for layer in layers]
    inputs = [layer["config"].get("batch_shape") for layer in layers
              if layer.get("class_name") == "InputLayer"]
    if any(list(shape or [])[1:] != [28, 28] for shape in inputs):
        raise ModelLayoutError(f"its input is {inputs[0]}, not 28x28")
    core = [layer for layer in layers if layer.get("class_name") not in ("InputLayer", "Dropout")]
    if [layer.get("class_name") for layer in core] != ["Flatten", "Dense", "Dense"]:
        raise ModelLayoutError(f"its layers are {', '.join(map(str, kinds))}")
    hidden, output = (layer["config"] for layer in core[1:])
    if hidden.get("activation") != "relu" or output.get("activation") != "softmax" or \
            output.get("units") != 10 or not (hidden.get("use_bias") and output.get("use_bias")):
        raise ModelLayoutError("its Dense layers are not relu -> softmax over 10 digits with biases")
    return hidden["name"], output["name"]


class NumpyMLP:
    """The trained MLP run in NumPy: softmax(relu(x @ W1 + b1) @ W2 + b2).

    Reading a frame needs nothing else: importing TensorFlow would cost seconds and
    hundreds of MB for 0.6 MFLOP a frame. Keras trains the network and stays the reference
    (a test holds the two to 1e-5).
    """

    def __init__(self, hidden_kernel, hidden_bias, output_kernel, output_bias):
        self.weights = [np.asarray(w, np.float32) for w in
                        (hidden_kernel, hidden_bias, output_kernel, output_bias)]
        w1, b1, w2, b2 = (w.shape for w in self.weights)
        if not (w1[0] == 28 * 28 and b1 == (w1[1],) and w2 == (w1[1], 10) and b2 == (10,)):
            raise ModelLayoutError(f"its weights have shapes {w1}, {b1}, {w2}, {b2}")

    @classmethod
    def from_file(cls, path):
        """Read a .keras file (a zip of config.json and model.weights.h5) without Keras.

        Raises ModelLayoutError for another layout or architecture, and zipfile, OS or
        value errors for a file that is not a readable model at all.
        """
        import h5py

        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
            if config.get("class_name") != "Sequential":
                raise ModelLayoutError(f"it is a {config.get('class_name')}, not a Sequential")
            names = mlp_dense_layer_names(config["config"]["layers"])
            with archive.open("model.weights.h5") as stored, h5py.File(stored, "r") as weights:
                try:
                    return cls(*(weights[f"layers/{name}/vars/{i}"][()]
                                 for name in names for i in (0, 1)))
                except KeyError as missing:
                    raise ModelLayoutError(f"its weights file lacks {missing}") from None

    @classmethod
    def from_keras(cls, model):
        """The NumPy twin of a Keras model in memory (after training or fine-tuning)."""
        mlp_dense_layer_names(model.get_config()["layers"])
        return cls(*model.get_weights())

    def probabilities(self, images):
        """Class probabilities (N, 10) for a batch of 28x28 float32 images in [0, 1]."""
        w1, b1, w2, b2 = self.weights
        x = np.asarray(images, np.float32).reshape(len(images), -1)
        logits = np.maximum(x @ w1 + b1, 0.0) @ w2 + b2
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))  # stable: no overflow
        return exp / exp.sum(axis=1, keepdims=True)


class KerasClassifier:
    """A model file NumpyMLP cannot read (another layout or architecture), run by Keras."""

    def __init__(self, model):
        self.model = model

    def probabilities(self, images):
        return np.asarray(self.model.predict_on_batch(np.asarray(images, np.float32)))


MODEL_HINT = "run with --retrain to replace it"


def load_keras_model(path):
    """The model file through Keras's own loader, checked to map 28x28 images to 10 digits."""
    import keras

    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as exc:
        raise UserError(f"cannot load model {path}: {first_line(exc)}; {MODEL_HINT}")
    input_shape = tuple(model.input_shape[1:]) if hasattr(model, "input_shape") else None
    output_shape = tuple(model.output_shape[1:]) if hasattr(model, "output_shape") else None
    if input_shape != (28, 28) or output_shape != (10,):
        raise UserError(f"model {path} maps {input_shape} to {output_shape}, "
                        f"not 28x28 images to 10 digits; {MODEL_HINT}")
    return model


def first_line(error):
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__


def load_model(path):
    """The model for reading digits: NumPy when the file is our MLP, else Keras's loader."""
    path = Path(path)
    try:
        return NumpyMLP.from_file(path)
    except ModelLayoutError as difference:
        print(f"note: {path} is not this app's MLP layout ({difference}); loading it with Keras")
        return KerasClassifier(load_keras_model(path))
    except (zipfile.BadZipFile, OSError, KeyError, ValueError) as exc:
        raise UserError(f"cannot load model {path}: {first_line(exc)}; {MODEL_HINT}")


def model_is_loadable(path):
    try:
        load_model(path)
        return True
    except UserError:
        return False


def file_sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# --------------------------------------------------------------------------------------
# Personal calibration: fine-tuning on the user's own handwriting
# --------------------------------------------------------------------------------------

MIN_SAMPLES = 10
MNIST_FLOOR = 0.985


def timestamped(folder):
    """A new file name stem in `folder` (made if missing), from the time to the microsecond."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    now = time.time()
    return folder / (time.strftime("%Y%m%d-%H%M%S", time.localtime(now)) +
                     f"-{int(now * 1e6) % 1_000_000:06d}")


def read_image(path, flags=cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH):
    """An image file as BGR (or as `flags` say), or None. Turned upright as its EXIF
    orientation says (phones store many photos sideways), and read through NumPy, since
    cv2.imread cannot open a path with non-ASCII characters on Windows."""
    data = np.fromfile(path, np.uint8)
    image = cv2.imdecode(data, flags) if data.size else None
    return image if image is not None and image.size else None


def write_png(path, image):
    """cv2.imwrite through NumPy, for the same reason."""
    cv2.imencode(".png", image)[1].tofile(str(path))


def save_sample(folder, digit, model_input):
    """Keep a model input with its label under folder/<digit>/, for --finetune."""
    path = timestamped(Path(folder) / str(digit)).with_suffix(".png")
    write_png(path, np.round(model_input * 255).astype(np.uint8))
    return path


def count_samples(folder):
    folder = Path(folder)
    return {d: len(list((folder / str(d)).glob("*.png"))) for d in DIGITS
            if (folder / str(d)).is_dir()}


def load_samples(folder):
    """The user's labelled model inputs saved with keys 0-9: uint8 (N, 28, 28), labels (N,)."""
    images, labels = [], []
    for digit in DIGITS:
        for path in sorted((Path(folder) / str(digit)).glob("*.png")):
            image = read_image(path, cv2.IMREAD_GRAYSCALE)
            if image is not None and image.shape == (28, 28):
                images.append(image)
                labels.append(digit)
    if len(images) < MIN_SAMPLES:
        raise UserError(f"only {len(images)} samples in {folder}/; press a digit key 0-9 in the "
                        f"window while that digit is in the ROI to save at least {MIN_SAMPLES}")
    return np.stack(images), np.array(labels, np.uint8)


def split_held_out(labels, fraction=0.3, seed=0):
    """Indexes (train, held_out): `fraction` of every digit's samples are kept for checking."""
    rng = np.random.default_rng(seed)
    train, held = [], []
    for digit in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == digit))
        cut = int(round(len(members) * fraction)) if len(members) > 1 else 0
        held += list(members[:cut])
        train += list(members[cut:])
    return np.array(train, int), np.array(held, int)


def accuracy_of(classifier, images, labels):
    """Share of uint8 `images` that `classifier` (NumpyMLP or KerasClassifier) reads right."""
    if len(labels) == 0:
        return float("nan")
    return float(np.mean(classifier.probabilities(scale_pixels(images)).argmax(axis=1) == labels))


def finetune_model(model, x_samples, y_samples, x_mnist, y_mnist, seed=0, epochs=6,
                   mnist_images=20000, learning_rate=3e-4, verbose=1):
    """A copy of `model` trained a little more on the user's samples mixed with MNIST.

    The samples are repeated (and augmented) to about a quarter of the mix, so the
    network learns the user's style without forgetting everyone else's.
    """
    import keras

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    tuned = compile_for_training(inference_copy(model), learning_rate)
    picked = rng.choice(len(x_mnist), size=min(mnist_images, len(x_mnist)), replace=False)
    repeats = max(1, mnist_images // (3 * len(x_samples)))
    x_mix = np.concatenate([x_mnist[picked], np.tile(x_samples, (repeats, 1, 1))])
    y_mix = np.concatenate([y_mnist[picked], np.tile(y_samples, repeats)])
    x_epochs, y_epochs = augmented_epochs(x_mix, y_mix, epochs, seed)
    batch_size = batch_size_for(len(x_epochs) // epochs, largest=128)
    fit_interruptibly(tuned, x_epochs, y_epochs, batch_size=batch_size, epochs=epochs,
                      shuffle=False, steps_per_epoch=len(x_epochs) // epochs // batch_size,
                      verbose=verbose)
    return tuned


def finetune_and_save(options):
    """--finetune: learn the user's handwriting, report held-out accuracy, save atomically."""
    x_samples, y_samples = load_samples(options.samples)
    train, held = split_held_out(y_samples, seed=options.seed)
    (x_mnist, y_mnist), (x_test, y_test) = load_mnist(options.data)
    model = load_keras_model(options.model)
    before = accuracy_of(NumpyMLP.from_keras(model), x_samples[held], y_samples[held])
    print(f"fine-tuning on {len(train)} of your {len(y_samples)} samples "
          f"({len(held)} held out to check)")
    tuned = finetune_model(model, x_samples[train], y_samples[train], x_mnist, y_mnist,
                           seed=options.seed)
    tuned_reader = NumpyMLP.from_keras(tuned)
    after = accuracy_of(tuned_reader, x_samples[held], y_samples[held])
    on_mnist = accuracy_of(tuned_reader, x_test, y_test)
    print(f"your held-out samples: {before:.1%} before, {after:.1%} after; "
          f"MNIST test accuracy now {on_mnist:.2%}")
    if on_mnist < MNIST_FLOOR:
        raise UserError(f"fine-tuning would drop MNIST accuracy to {on_mnist:.2%} (below "
                        f"{MNIST_FLOOR:.1%}); kept the old model", status=EXIT_FAILURE)
    info = read_training_info(options.model)
    info["finetune"] = {"samples": int(len(y_samples)), "held_out": int(len(held)),
                        "held_out_before": before, "held_out_after": after,
                        "mnist_test_accuracy": on_mnist}
    save_model_atomically(tuned, options.model, info)
    print(f"saved the fine-tuned model to {options.model}")
    return tuned_reader


# --------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------

REPORT_FIGURES = ("confusion_matrix.png", "per_class_accuracy.png", "roc_curves.png",
                  "precision_recall.png", "confidence_histogram.png", "training_history.png",
                  "overview.png")
REPORT_FILES = REPORT_FIGURES + ("classification_report.txt", "metrics.json", "history.json")


def names_model_file(json_path, model_path):
    """Whether the JSON file at `json_path` holds this exact model file's model_sha256."""
    try:
        return json.loads(Path(json_path).read_text()).get("model_sha256") == file_sha256(model_path)
    except (OSError, ValueError, AttributeError):
        return False


def reports_are_current(reports_dir, model_path):
    """True when every report exists and metrics.json describes this exact model file."""
    reports_dir = Path(reports_dir)
    if not all((reports_dir / name).is_file() for name in REPORT_FILES):
        return False
    return names_model_file(reports_dir / "metrics.json", model_path)


MNIST_UNAVAILABLE = "mnist_unavailable.json"  # in the reports folder, for one model file


def remember_mnist_unavailable(reports_dir, model_path):
    """Note that MNIST could not be downloaded to evaluate this model file: later starts
    then skip the attempt, which costs seconds (Keras's import) and fails again offline."""
    try:
        Path(reports_dir).mkdir(parents=True, exist_ok=True)
        write_text_atomically(Path(reports_dir) / MNIST_UNAVAILABLE,
                              json.dumps({"model_sha256": file_sha256(model_path)}))
    except OSError:
        pass  # only a shortcut for the next start


def compute_metrics(y_true, probabilities):
    from sklearn.metrics import classification_report, roc_auc_score

    predicted = probabilities.argmax(axis=1)
    report = classification_report(y_true, predicted, labels=DIGITS, digits=4, output_dict=True,
                                   zero_division=0)
    per_class_auc = {str(d): float(roc_auc_score(y_true == d, probabilities[:, d])) for d in DIGITS}
    return {
        "accuracy": float(np.mean(predicted == y_true)),
        "test_images": int(len(y_true)),
        "per_class": {str(d): {"precision": report[str(d)]["precision"],
                               "recall": report[str(d)]["recall"],
                               "f1": report[str(d)]["f1-score"],
                               "support": int(report[str(d)]["support"]),
                               "roc_auc": per_class_auc[str(d)]} for d in DIGITS},
        "macro_roc_auc": float(roc_auc_score(y_true, probabilities, multi_class="ovr",
                                             average="macro")),
    }


def plot_confusion_matrix(ax, y_true, predicted):
    from sklearn.metrics import ConfusionMatrixDisplay

    ConfusionMatrixDisplay.from_predictions(y_true, predicted, labels=DIGITS, ax=ax,
                                            colorbar=False, cmap="Blues")
    ax.set_title("Confusion matrix")


def plot_per_class_accuracy(ax, y_true, predicted):
    accuracy = [np.mean(predicted[y_true == d] == d) for d in DIGITS]
    bars = ax.bar(DIGITS, accuracy, color="tab:blue")
    ax.bar_label(bars, labels=[f"{a:.3f}" for a in accuracy], fontsize=7)
    ax.set(xticks=DIGITS, ylim=(min(accuracy) - 0.02, 1.0), xlabel="digit", ylabel="accuracy",
           title="Per-class accuracy (recall)")


def plot_roc_curves(ax, y_true, probabilities):
    from sklearn.metrics import RocCurveDisplay

    for d in DIGITS:
        display = RocCurveDisplay.from_predictions(y_true == d, probabilities[:, d], ax=ax)
        # sklearn's legend rounds the AUC to 2 decimals, where every digit reads 1.00.
        display.line_.set_label(f"{d}: AUC {display.roc_auc:.4f}")
    ax.set(xscale="log", xlim=(1e-4, 1), ylim=(0.8, 1.005), aspect="auto",
           xlabel="false positive rate (log)", ylabel="true positive rate",
           title="ROC curves, one digit vs rest")
    ax.legend(fontsize=7, loc="lower right")


def plot_precision_recall(ax, y_true, probabilities):
    from sklearn.metrics import PrecisionRecallDisplay

    for d in DIGITS:
        display = PrecisionRecallDisplay.from_predictions(y_true == d, probabilities[:, d], ax=ax)
        display.line_.set_label(f"{d}: AP {display.average_precision:.4f}")
    ax.set(xlim=(0.8, 1.002), ylim=(0.8, 1.005), aspect="auto", xlabel="recall",
           ylabel="precision", title="Precision-recall curves")
    ax.legend(fontsize=7, loc="lower left")


def plot_confidence_histogram(ax, y_true, probabilities):
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == y_true
    bins = np.linspace(0, 1, 41)
    ax.hist(confidence[correct], bins=bins, alpha=0.7, label=f"correct ({correct.sum()})",
            color="tab:green")
    ax.hist(confidence[~correct], bins=bins, alpha=0.8, label=f"wrong ({(~correct).sum()})",
            color="tab:red")
    ax.set(yscale="log", xlabel="top-class probability", ylabel="images",
           title="Prediction confidence")
    ax.legend(fontsize=8)


def plot_training_history(acc_ax, loss_ax, history):
    if not history:
        for ax in (acc_ax, loss_ax):
            ax.text(0.5, 0.5, "no training history stored with this model", ha="center")
        return
    epochs = np.arange(1, len(history["loss"]) + 1)
    for ax, metric in ((acc_ax, "accuracy"), (loss_ax, "loss")):
        ax.plot(epochs, history[metric], "o-", label="training")
        ax.plot(epochs, history[f"val_{metric}"], "s-", label="validation")
        ax.set(xlabel="epoch", ylabel=metric, title=f"Training {metric}", xticks=epochs)
        ax.legend(fontsize=8)


def classification_summary(y_true, predicted):
    from sklearn.metrics import classification_report

    return classification_report(y_true, predicted, labels=DIGITS, digits=4, zero_division=0)


def draw_report_figures(y_true, probabilities, history):
    """All evaluation figures as {file name: matplotlib Figure}."""
    import matplotlib.pyplot as plt

    predicted = probabilities.argmax(axis=1)
    single_plots = {
        "confusion_matrix.png": lambda ax: plot_confusion_matrix(ax, y_true, predicted),
        "per_class_accuracy.png": lambda ax: plot_per_class_accuracy(ax, y_true, predicted),
        "roc_curves.png": lambda ax: plot_roc_curves(ax, y_true, probabilities),
        "precision_recall.png": lambda ax: plot_precision_recall(ax, y_true, probabilities),
        "confidence_histogram.png": lambda ax: plot_confidence_histogram(ax, y_true, probabilities),
    }
    figures = {}
    for name, draw in single_plots.items():
        figure, ax = plt.subplots(figsize=(7, 6), layout="constrained")
        draw(ax)
        figures[name] = figure
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.5), layout="constrained")
    plot_training_history(*axes, history)
    figures["training_history.png"] = figure

    overview, axes = plt.subplots(2, 4, figsize=(22, 10), layout="constrained")
    for ax, draw in zip(axes.flat, single_plots.values()):
        draw(ax)
    plot_training_history(axes[1, 1], axes[1, 2], history)
    axes[1, 3].axis("off")
    axes[1, 3].text(0.05, 0.5, classification_summary(y_true, predicted), family="monospace",
                    fontsize=9, va="center")
    overview.suptitle(f"MNIST test set: accuracy {np.mean(predicted == y_true):.4f}", fontsize=16)
    figures["overview.png"] = overview
    return figures


def write_text_atomically(path, text):
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def evaluate_model(model, x_test, y_test, model_path, reports_dir, show_plots=False):
    """Write every report for `model` on the test set to `reports_dir`; returns the metrics."""
    import matplotlib

    if not show_plots:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    probabilities = model.probabilities(scale_pixels(x_test))
    report_text = classification_summary(y_test, probabilities.argmax(axis=1))
    training = read_training_info(model_path)
    metrics = compute_metrics(y_test, probabilities)
    metrics.update(model_file=str(Path(model_path).resolve()), model_sha256=file_sha256(model_path),
                   training_seconds=training.get("seconds"), epochs=training.get("epochs"))

    reports_dir = Path(reports_dir)
    reports_dir.mkdir(parents=True, exist_ok=True)
    figures = draw_report_figures(y_test, probabilities, training.get("history"))
    for name, figure in figures.items():
        figure.savefig(reports_dir / name, dpi=90)
    write_text_atomically(reports_dir / "classification_report.txt", report_text)
    write_text_atomically(reports_dir / "history.json", json.dumps(training.get("history") or {},
                                                                   indent=1))
    # metrics.json last: its presence with this model's hash marks the reports as complete.
    write_text_atomically(reports_dir / "metrics.json", json.dumps(metrics, indent=1))
    print(report_text)
    if show_plots:
        plt.show()
    plt.close("all")
    return metrics


# --------------------------------------------------------------------------------------
# Vision: frame -> 28x28 model input (pure functions, no GUI)
# --------------------------------------------------------------------------------------

MNIST_BOX = 20          # MNIST digits are scaled into a 20x20 box ...
MNIST_SIDE = 28         # ... and centred by mass in a 28x28 field.
MNIST_STROKE = 0.115    # median stroke width over the longer side, measured on MNIST
STROKE_KEPT = (0.6, 1.7)   # a stroke within these shares of MNIST's is kept as it is;
THIN_STROKE_TARGET = 0.75  # a thinner one is thickened to MNIST's thinner tenth, not to its
                           # median: close strokes (a 7's hook, a 4's open top) stay apart;
THINNED_INK_KEPT = 0.3     # a bolder one is thinned, unless that leaves less than this share
AUTO_THRESHOLD = 0


def centered_roi(frame_shape, fraction=0.5):
    """(x, y, side, side) of the centred square whose side is `fraction` of the shorter side."""
    frame_h, frame_w = frame_shape[:2]
    side = max(1, int(min(frame_h, frame_w) * fraction))
    return (frame_w - side) // 2, (frame_h - side) // 2, side, side


def to_uint8(image):
    """Any camera frame (gray, BGR, BGRA; uint8, uint16 or float) as 8-bit gray or BGR."""
    image = np.asarray(image)
    if image.ndim == 3:
        image = image[:, :, 0] if image.shape[2] < 3 else image[:, :, :3]
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        values = np.nan_to_num(image.astype(np.float32))
        top = 1.0 if values.size and values.max() <= 1.0 else 255.0
        image = np.clip(values * (255.0 / top), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(image)


def to_gray_uint8(image):
    """Any camera frame as 8-bit grayscale."""
    image = to_uint8(image)
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image


LIGHT_MAP_SIDE = 48        # the paper's light is estimated on a copy this small across
LIGHT_STROKE_CLOSING = 11  # ... where a closing this wide removes every pen stroke ...
LIGHT_SMOOTHING = 5        # ... and a blur this wide softens the estimate


def paper_brightness(image, across=None):
    """Estimate the paper's brightness under the ink: a closing (max then min) on a small copy.

    Ink strokes are thinner than the kernel so they vanish, while gradients and soft
    shadows, which are larger, survive; dividing by this flattens the light. The copy has
    LIGHT_MAP_SIDE cells `across` pixels (by default the image's shorter side).
    """
    h, w = image.shape[:2]
    cell = (across or min(h, w)) / LIGHT_MAP_SIDE
    small = cv2.resize(image, (max(1, round(w / cell)), max(1, round(h / cell))),
                       interpolation=cv2.INTER_AREA)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (LIGHT_STROKE_CLOSING,) * 2)
    closed = cv2.morphologyEx(small, cv2.MORPH_CLOSE, kernel, borderType=cv2.BORDER_REPLICATE)
    closed = cv2.GaussianBlur(closed, (LIGHT_SMOOTHING,) * 2, 0)
    return cv2.resize(closed, (w, h), interpolation=cv2.INTER_LINEAR)


INK_RATIO_RANGE = (0.55, 0.80)  # ink is at most 80% as bright as the paper around it ...
FAINTEST_INK = 0.90             # ... or 90% (a pencil, a smear) on paper even enough for it
PAPER_SPREADS = 6               # ink lies this many times the paper's own spread below it
PAPER = 200                     # the paper's brightness in a ratio image


JPEG_COLOUR_MEDIAN = 5  # px: the colour of a picture is smoothed by a median this wide


def without_jpeg_colour_noise(image):
    """The BGR image with its colour, not its brightness, smoothed by a median. JPEG (a
    webcam's MJPG, a phone's photo) stores colour at half resolution in 8x8 blocks: around
    every stroke it rings, dark in one channel, and would pass for coloured ink in specks.
    A coloured stroke 3 px wide keeps its colour; a thinner one keeps its darkness."""
    luma, *chroma = cv2.split(cv2.cvtColor(image, cv2.COLOR_BGR2YCrCb))
    chroma = [cv2.medianBlur(channel, JPEG_COLOUR_MEDIAN) for channel in chroma]
    return cv2.cvtColor(cv2.merge([luma, *chroma]), cv2.COLOR_YCrCb2BGR)


def brightness_ratio(image, across=None):
    """Each pixel's brightness against the paper's around it: PAPER for paper, less for ink.

    In colour, the darkest of the three channels' ratios: a pale red or blue stroke, faint
    in gray, is dark in the channel its ink absorbs, on white or coloured paper alike.
    """
    if image.ndim == 3:
        image = without_jpeg_colour_noise(image)
    ratio = cv2.divide(image, np.maximum(paper_brightness(image, across), 1), scale=PAPER)
    if ratio.ndim == 2:
        return ratio
    blue, green, red = cv2.split(ratio)   # cv2.min: ten times numpy's min over the channels
    return cv2.min(cv2.min(blue, green), red)


def median_level(image, mask=None):
    """The median of a uint8 image (where `mask` is set), from its histogram (np.median
    costs 7x)."""
    counts = np.cumsum(cv2.calcHist([image], [0], mask, [256], [0, 256]).ravel())
    return int(np.searchsorted(counts, counts[-1] / 2))


def faintest_ink(ratio):
    """How faint ink may be, as a share of the paper's light: as faint as FAINTEST_INK (a
    pencil, a stroke smeared as the paper moves), but PAPER_SPREADS times the paper's own
    spread below the paper (its median distance from its median: the texture and shadow
    edges left after flattening the light), and never less than INK_RATIO_RANGE allows."""
    paper = median_level(ratio)
    spread = median_level(cv2.absdiff(ratio, paper))
    return float(np.clip((paper - PAPER_SPREADS * spread) / PAPER, INK_RATIO_RANGE[1], FAINTEST_INK))


def binarize(gray, threshold=AUTO_THRESHOLD, ratio=None):
    """White ink on black from dark ink on light paper.

    threshold 1-255: a fixed global threshold on the gray value.
    threshold 0: automatic; divide by the paper's brightness, then Otsu on that ratio,
    clamped so that blank paper (ratio near 1 everywhere) yields no ink: no fainter than
    faintest_ink() allows on this paper.
    """
    if threshold != AUTO_THRESHOLD:
        _, ink = cv2.threshold(gray, threshold - 1, 255, cv2.THRESH_BINARY_INV)
        return ink
    ratio = brightness_ratio(gray) if ratio is None else ratio
    otsu, _ = cv2.threshold(ratio, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    lowest, highest = PAPER * INK_RATIO_RANGE[0], PAPER * faintest_ink(ratio)
    _, ink = cv2.threshold(ratio, float(np.clip(otsu, lowest, highest)), 255,
                           cv2.THRESH_BINARY_INV)
    return ink


def stroke_thickness(area, outline):
    """A stroke's mean width from its ink's area and its outline's length: the outline runs
    along both sides of the stroke, so the width is about 2 * area / outline."""
    return 2.0 * area / max(outline, 1.0)


@dataclass
class Component:
    label: int
    x: int
    y: int
    w: int
    h: int
    area: int
    perimeter: float = 0.0  # its outline's length, loops included

    @property
    def box(self):
        return self.x, self.y, self.w, self.h

    @property
    def pen(self):
        return stroke_thickness(self.area, self.perimeter)


def ink_components(ink):
    """Connected ink components that do not touch the image's edge (paper edges, shadows):
    (labels, components).

    Found from their contours (outlines and loops), each outline filled with its label and
    cut back to the ink, largest first so that ink inside a loop keeps its own label: a
    quarter of the time connectedComponentsWithStats takes here, and the outlines' lengths
    come with them.
    """
    contours, hierarchy = cv2.findContours(ink, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    h, w = ink.shape
    labels = np.zeros((h, w), np.int32)
    components = []
    outlines = [i for i in range(len(contours)) if hierarchy[0][i][3] < 0]
    for i in sorted(outlines, key=lambda i: -cv2.contourArea(contours[i])):
        x, y, cw, ch = cv2.boundingRect(contours[i])
        if x == 0 or y == 0 or x + cw >= w or y + ch >= h:
            continue
        label = len(components) + 1
        cv2.drawContours(labels, contours, i, label, cv2.FILLED)
        box = labels[y:y + ch, x:x + cw]
        box[ink[y:y + ch, x:x + cw] == 0] = 0
        perimeter, loop = cv2.arcLength(contours[i], closed=True), hierarchy[0][i][2]
        while loop >= 0:
            perimeter += cv2.arcLength(contours[loop], closed=True)
            loop = hierarchy[0][loop][0]
        components.append(Component(label, x, y, cw, ch, int(np.count_nonzero(box == label)),
                                    perimeter))
    return labels, components


def mask_of(labels, components):
    """The 0/255 mask of these components of `labels`, cropped to their common box."""
    x, y, w, h = union_box([c.box for c in components])
    crop = labels[y:y + h, x:x + w]
    wanted = np.zeros(int(crop.max()) + 1, np.uint8)
    wanted[[c.label for c in components]] = 255
    return wanted[crop]


def boxes_near(a, b, margin):
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    return (ax - margin < bx + bw and bx - margin < ax + aw and
            ay - margin < by + bh and by - margin < ay + ah)


def outside(start, length, point):
    """How far `point` lies outside the span from `start`, `length` long (0 within it)."""
    return max(start - point, point - (start + length), 0)


def union_box(boxes):
    x0 = min(b[0] for b in boxes)
    y0 = min(b[1] for b in boxes)
    x1 = max(b[0] + b[2] for b in boxes)
    y1 = max(b[1] + b[3] for b in boxes)
    return x0, y0, x1 - x0, y1 - y0


SPECK_SHARE = 0.0006       # ink covering less of the ROI than this is a speck
DIGIT_SIZE_SHARE = 0.15    # a digit is at least this tall (or wide) a share of the ROI ...
DASH_RATIO = 4             # ... at most this many times wider than tall ...
ONE_RATIO = 0.3            # ... and unless as narrow as a 1 (this share of its height),
SOLID_SHARE = 0.8          # ... fills at most this much of its box: a thumb or a shadow is solid
PIECES_NEAR = 0.12         # pieces this close (a share of the larger one's size) are one digit
# The ROI holds one digit, and a thin pen's stroke breaks into pieces: one this long (a share
# of the ROI) is no speck however little ink it holds, and pieces this close are one digit.
STROKE_PIECE_SHARE = 0.04
BROKEN_GAP_SHARE = 0.06
SAME_PEN_RATIO = 3         # pieces of one digit have stroke widths within this ratio


def is_plausible_digit(box, area, roi_side):
    """Big enough to be a digit, not a flat line and not a solid blob (a thumb, a shadow)."""
    x, y, w, h = box
    big_enough = max(w, h) >= DIGIT_SIZE_SHARE * roi_side
    not_a_dash = w <= DASH_RATIO * h
    thin = min(w, h) < ONE_RATIO * max(w, h)  # a "1" fills its box and is still a digit
    not_a_blob = thin or area <= SOLID_SHARE * w * h
    return big_enough and not_a_dash and not_a_blob


def same_pen(a, b):
    """Whether two pieces of ink could come from one pen: a digit's strokes do, a shadow's
    edge beside it does not."""
    return max(a.pen, b.pen) <= SAME_PEN_RATIO * max(1.0, min(a.pen, b.pen))


def group_pieces(seed, components, least_gap=2):
    """`seed` and the pieces near it: a digit written with a broken stroke (a 5's bar, a 4)."""
    group, box = [seed], seed.box
    changed = True
    while changed:
        changed = False
        for c in components:
            margin = max(least_gap, PIECES_NEAR * max(box[2], box[3], c.w, c.h))
            if c not in group and boxes_near(box, c.box, margin) and same_pen(seed, c):
                group.append(c)
                box = union_box([box, c.box])
                changed = True
    return group, box


def off_centre(box, shape):
    """How far the box lies from the image's centre (0 when over it), then how far its own
    centre does."""
    x, y, w, h = box
    cy, cx = shape[0] / 2, shape[1] / 2
    return np.hypot(outside(x, w, cx), outside(y, h, cy)), np.hypot(x + w / 2 - cx, y + h / 2 - cy)


def select_digit(ink):
    """The mask of the plausible digit in `ink` (0/255) nearest the centre, where the user
    holds it; or None.

    Specks and anything touching the ROI's edge are ignored; nearby pieces are kept together.
    A paper's edge or a shadow's, off to one side, is often bigger than a thin digit.
    """
    labels, components = ink_components(ink)
    side = min(ink.shape)
    speck = max(4, SPECK_SHARE * ink.shape[0] * ink.shape[1])
    components = sorted((c for c in components
                         if c.area >= speck or max(c.w, c.h) >= STROKE_PIECE_SHARE * side),
                        key=lambda c: -c.area)
    best, grouped = None, set()
    for seed in components:
        if seed.label in grouped:
            continue
        group, box = group_pieces(seed, components, BROKEN_GAP_SHARE * side)
        grouped.update(c.label for c in group)
        area = sum(c.area for c in group)
        if is_plausible_digit(box, area, side):
            rank = off_centre(box, ink.shape)
            if best is None or rank < best[0]:
                best = (rank, group)
    return None if best is None else mask_of(labels, best[1])


def stroke_width(mask):
    """Mean stroke width of a 0/255 mask, from its area and contour length."""
    contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    return stroke_thickness(cv2.countNonZero(mask), sum(cv2.arcLength(c, closed=True) for c in contours))


def normalize_stroke(mask):
    """Thicken a thin pen stroke, or thin a marker stroke, towards MNIST's proportions."""
    target = MNIST_STROKE * max(mask.shape)
    width = stroke_width(mask)
    padded = cv2.copyMakeBorder(mask, 2, 2, 2, 2, cv2.BORDER_CONSTANT, value=0)
    if width < STROKE_KEPT[0] * target:
        size = int(round(THIN_STROKE_TARGET * target - width)) | 1
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
        padded = cv2.copyMakeBorder(mask, size, size, size, size, cv2.BORDER_CONSTANT, value=0)
        return cv2.dilate(padded, kernel)
    if width > STROKE_KEPT[1] * target:
        size = int(round((width - target) / 2)) | 1
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
        thinner = cv2.erode(padded, kernel)
        kept = cv2.countNonZero(thinner) > THINNED_INK_KEPT * cv2.countNonZero(mask)
        return thinner if kept else padded
    return padded


def crop_to_ink(mask):
    points = cv2.findNonZero(mask)
    x, y, w, h = cv2.boundingRect(points)
    return mask[y:y + h, x:x + w]


def frame_like_mnist(image):
    """A uint8 digit image (any size) framed as MNIST frames its digits, as uint8 28x28."""
    framed = centre_by_mass(fit_into_box(crop_to_ink(image)).astype(np.float32))
    return np.clip(framed, 0, 255).astype(np.uint8)


def fit_into_box(mask, side=MNIST_BOX):
    """Scale so the longer side is `side` px, keeping the aspect ratio."""
    h, w = mask.shape
    scale = side / max(h, w)
    size = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(mask, size, interpolation=interpolation)


def centre_by_mass(digit, side=MNIST_SIDE):
    """Pad to side x side and shift so the centre of mass sits at the centre, as in MNIST."""
    h, w = digit.shape
    canvas = np.zeros((side, side), np.float32)
    top, left = (side - h) // 2, (side - w) // 2
    canvas[top:top + h, left:left + w] = digit
    moments = cv2.moments(canvas)
    if moments["m00"] <= 0:
        return canvas
    dx = side / 2 - moments["m10"] / moments["m00"]
    dy = side / 2 - moments["m01"] / moments["m00"]
    shift = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(canvas, shift, (side, side), flags=cv2.INTER_LINEAR, borderValue=0)


def mnist_input_from_mask(mask):
    """A 0/255 digit mask -> float32 28x28 in [0, 1], framed like an MNIST digit."""
    digit = fit_into_box(crop_to_ink(normalize_stroke(mask))).astype(np.float32) / 255.0
    return np.clip(centre_by_mass(digit), 0.0, 1.0)


MIN_ROI_SIDE = 16
# The ROI is read at most this size, and the number band at most this tall: their sizes in
# a 640x480 frame. A digit a few hundred pixels tall gains nothing over one of ~100 for a
# 20x20 MNIST box, and reading then costs the same at any camera resolution.
WORK_SIDE = 240
WORK_BAND_HEIGHT = 192
AVERAGE_ALL_UP_TO = 2     # a box up to this many times the working size is averaged whole


@dataclass
class Preprocessed:
    roi: tuple            # (x, y, w, h) in the frame
    ink: np.ndarray       # binarized ROI at working size, white ink on black (uint8 0/255)
    model_input: object   # float32 28x28 in [0, 1], or None when the ROI holds no digit
    scale: float = 1.0    # frame pixels per ink pixel

    def panels(self):
        """What the inset shows, and a snapshot saves: (title, uint8 image)."""
        seen = np.zeros((28, 28), np.uint8) if self.model_input is None else \
            np.round(self.model_input * 255).astype(np.uint8)
        return [("binarized", self.ink), ("model input", seen)]


LINE_TILT_PX = 5        # printed lines are found even when they drift this much across a run
LINE_WIDTH_PX = 7       # printed lines are thinner than this
LINE_CONTRAST = 0.05    # ... and darker than the paper beside them by this share, at least


def thin_lines(found, axis):
    """The parts of `found` thin enough to be printed lines (axis 1: horizontal, 0:
    vertical); None when there are none. A cloud of noise in a shadow can hold long runs
    too, but never as a thin line."""
    contours, _ = cv2.findContours(found, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    lines = [c for c in contours if cv2.contourArea(c) <= (LINE_TILT_PX + LINE_WIDTH_PX) *
             cv2.boundingRect(c)[2 + (1 - axis)]]
    if not lines:
        return None
    if len(lines) == len(contours):
        return found
    return cv2.bitwise_and(found, cv2.drawContours(np.zeros_like(found), lines, -1, 255, cv2.FILLED))


LINE_CELL = 4           # runs are first looked for on cells this many pixels long


def holds_a_run(marks, length, axis):
    """Whether a row (axis 1) or column (axis 0) of `marks` holds an unbroken run `length`
    long: looked for cheaply on cells LINE_CELL pixels long, where such a run leaves a run
    of full cells; no run of those, no line, and no more work."""
    h, w = marks.shape
    if axis == 1:
        cells = cv2.resize(marks[:, :w - w % LINE_CELL], (w // LINE_CELL, h), interpolation=cv2.INTER_AREA)
    else:
        cells = cv2.resize(marks[:h - h % LINE_CELL], (w, h // LINE_CELL), interpolation=cv2.INTER_AREA)
    full = cv2.threshold(cells, 254, 255, cv2.THRESH_BINARY)[1]
    run = max(1, length // LINE_CELL - 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (run, 1) if axis == 1 else (1, run))
    return cv2.countNonZero(cv2.erode(full, kernel)) > 0


def ink_along(on_lines, off_lines, ratio):
    """The ink on printed lines (`on_lines`; the rest is `off_lines`) that is a stroke, not
    the line alone: a stroke drawn along a printed line (a 4's stem on the margin line)
    darkens the line as it darkens the paper, by the ink's own share. A pixel on the line
    counts as the stroke when it is nearer that level (the line's times the ink's, both
    medians) than the line's own. The line's level is the median of its pixels that pass
    for ink: most of a line's length runs over bare paper. The ink's is that of the strokes
    off the lines, their cores (noise that passes for ink is specks); where they are no
    darker than the line, or there are none, a stroke would darken it by less than its own
    unevenness, and none is kept: strokes that cross the line are bridged instead."""
    if not on_lines.any():
        return on_lines
    line_level = median_level(ratio, on_lines)
    strokes = cv2.erode(off_lines, np.ones((2, 2), np.uint8))
    ink_level = median_level(ratio, strokes) if strokes.any() else PAPER
    if ink_level >= line_level:
        return np.zeros_like(on_lines)
    stroke_on_line = line_level * ink_level / PAPER
    darker = cv2.threshold(ratio, (line_level + stroke_on_line) / 2, 255, cv2.THRESH_BINARY_INV)[1]
    return cv2.bitwise_and(on_lines, darker)


def without_paper_lines(ink, ratio, lengths):
    """The ink without the long straight lines of ruled or squared paper, a margin line or
    a table's edge: anything straight and longer than `lengths` (horizontal, vertical).

    Lines are found by an opening with a long kernel (as in OpenCV's tutorial on extracting
    horizontal and vertical lines). They are looked for in everything thin and a little
    darker than the paper beside it (a black-hat), since a faint printed line is only partly
    dark enough to pass for ink (the ink counts too: a line runs on through the strokes it
    crosses), and on a copy thickened across the line, so that a sheet held a little askew
    still shows its lines whole. Strokes that crossed a line are bridged where it was, and
    a stroke drawn along it stays (ink_along).
    """
    horizontal, vertical = (max(2, int(length)) for length in lengths)
    thin = cv2.morphologyEx(ratio, cv2.MORPH_BLACKHAT,
                            cv2.getStructuringElement(cv2.MORPH_RECT, (LINE_WIDTH_PX,) * 2))
    faint = cv2.bitwise_or(ink, cv2.threshold(thin, LINE_CONTRAST * PAPER, 255, cv2.THRESH_BINARY)[1])
    for along, across, axis in (((horizontal, 1), (1, LINE_TILT_PX), 1),
                                ((1, vertical), (LINE_TILT_PX, 1), 0)):
        thick = cv2.dilate(faint, cv2.getStructuringElement(cv2.MORPH_RECT, across))
        if not holds_a_run(thick, max(along), axis):
            continue
        lines = thin_lines(cv2.morphologyEx(thick, cv2.MORPH_OPEN,
                                            cv2.getStructuringElement(cv2.MORPH_RECT, along)), axis)
        if lines is None:
            continue
        off_lines = cv2.bitwise_and(ink, cv2.bitwise_not(lines))
        rest = cv2.bitwise_or(off_lines, ink_along(cv2.bitwise_and(ink, lines), off_lines, ratio))
        # Across the line and wider than it, however thick it was found.
        span = LINE_TILT_PX + LINE_WIDTH_PX
        bridge = (1, span) if axis == 1 else (span, 1)
        bridged = cv2.morphologyEx(rest, cv2.MORPH_CLOSE,
                                   cv2.getStructuringElement(cv2.MORPH_RECT, bridge))
        ink = cv2.bitwise_or(rest, cv2.bitwise_and(bridged, lines))
    return ink


def working_image(frame, box, largest):
    """The frame's `box` as 8-bit gray or BGR, its height scaled down to at most `largest`;
    and the scale (frame pixels per returned pixel).

    Only the box is looked at. Up to a 1080p camera's ROI it is averaged down (INTER_AREA);
    a larger one is first sampled down to twice the working size (a cost that grows with
    the output, not the input), then averaged, so that thin strokes stay.
    """
    x, y, w, h = box
    crop = np.asarray(frame)[y:y + h, x:x + w]
    scale = h / largest
    if scale <= 1:
        return to_uint8(crop), 1.0
    size = (max(1, round(w / scale)), largest)
    if scale > AVERAGE_ALL_UP_TO:
        crop = cv2.resize(crop, (2 * size[0], 2 * size[1]), interpolation=cv2.INTER_LINEAR)
    return to_uint8(cv2.resize(crop, size, interpolation=cv2.INTER_AREA)), scale


NOTE_DARKNESS = 0.5      # a background darker than half the paper is not paper: a room behind a note
NOTE_BORDER = 0.2        # ... when it takes this much of the box's border
NOTE_STEP = 0.25         # ... and the note's edge is a step: this share of the paper's light within
NOTE_STEP_PX = 8         # ... this many pixels either side (a shadow on the paper fades over tens)
NOTE_EDGE_PX = 4         # the note's own edge, left out with the background


def note_mask(gray):
    """Where a note held up in front of a dark room lies in the box (255), or None when
    paper reaches the box's edges (as it usually does).

    Around a note the dark room looks like ink against the paper's light; only the note's
    largest bright region, its holes (the ink) filled, is read.
    """
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    # The brightest 16x16 block is never brighter than the brightest pixel: a border that
    # is not dark even against that needs no averaging (a costly resize), and is paper.
    if not is_mostly_darker(border, NOTE_DARKNESS * float(gray.max())):
        return None
    small = cv2.resize(gray, (16, 16), interpolation=cv2.INTER_AREA)
    dark = NOTE_DARKNESS * float(small.max())
    if not is_mostly_darker(border, dark):
        return None
    bright = cv2.threshold(gray, dark, 255, cv2.THRESH_BINARY)[1]
    contours, _ = cv2.findContours(bright, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    mask = np.zeros_like(gray)
    if contours:
        cv2.drawContours(mask, [max(contours, key=cv2.contourArea)], -1, 255, cv2.FILLED)
    if not has_a_step_at_its_edge(gray, mask, NOTE_STEP * float(small.max())):
        return None   # a shadow across the paper: the light's flattening takes care of it
    edge = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * NOTE_EDGE_PX + 1,) * 2)
    return cv2.erode(mask, edge)


def is_mostly_darker(border, level):
    """Whether NOTE_BORDER or more of the border's pixels are darker than `level`."""
    return np.count_nonzero(border < level) >= NOTE_BORDER * border.size


def has_a_step_at_its_edge(gray, mask, step):
    """Whether the gray just inside the mask's edge is brighter by `step` or more than just
    outside it (NOTE_STEP_PX away, medians): a note's edge against a room, not a shadow's."""
    near = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * NOTE_STEP_PX + 1,) * 2)
    inside = cv2.subtract(mask, cv2.erode(mask, near))
    outside = cv2.subtract(cv2.dilate(mask, near), mask)
    if not inside.any() or not outside.any():
        return False
    return median_level(gray, inside) - median_level(gray, outside) >= step


GRAINY = 2                # a picture whose pixels stray this far (median, in gray levels) from
                          # their neighbours' median is grainy: single pixels would pass for ink ...
SMOOTHING_PER_GRAIN = 0.3  # ... so it is smoothed first, by a blur this wide (pixels) per level


def graininess(gray):
    """How far a pixel typically strays from the median of its 3x3 neighbourhood: paper
    fills most of the picture, so this is the sensor's noise (a dim room), not the ink."""
    return median_level(cv2.absdiff(gray, cv2.medianBlur(gray, 3)))


FAINT_INK_RATIO = 0.85    # ink this faint counts where it lies within FAINT_REACH pixels of
FAINT_REACH = 2           # clearer ink: a thin stroke out of focus fades apart in places ...
FAINT_PEN_PX = 5          # ... where the pen is thinner than this (a bold one only gets bolder)


def with_faint_edges(ink, ratio):
    """The ink and the faint ink next to it (hysteresis, as Canny links weak edges to strong
    ones), which joins a blurred thin stroke's pieces again. Only near clear ink: a printed
    line as faint gains a stub where it crosses a stroke, no more. Only for a thin pen: a
    bold stroke's halo would fill a printed 6's eye or make a bold 0 look solid."""
    if stroke_width(ink) >= FAINT_PEN_PX:
        return ink
    faint = cv2.threshold(ratio, FAINT_INK_RATIO * PAPER, 255, cv2.THRESH_BINARY_INV)[1]
    near = cv2.dilate(ink, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * FAINT_REACH + 1,) * 2))
    return cv2.bitwise_or(ink, cv2.bitwise_and(faint, near))


def ink_in(frame, box, threshold, largest, line_lengths, faint_edges=False, light_across=None):
    """The frame's `box` (x, y, w, h) at working size (height at most `largest`) as white
    ink on black, without printed lines longer than `line_lengths` (shares of its width and
    height), with `faint_edges` when the threshold is automatic; blank when too small to
    read. `light_across`: the paper's light is estimated at the scale of a box this tall
    (frame pixels; by default this box). Returns (ink, frame pixels per ink pixel)."""
    x, y, w, h = box
    if min(w, h) < MIN_ROI_SIDE:
        return np.zeros((max(h, 1), max(w, 1)), np.uint8), 1.0
    image, scale = working_image(frame, box, largest)
    gray = to_gray_uint8(image)
    grain = graininess(gray)
    if grain >= GRAINY:
        image = cv2.GaussianBlur(image, (0, 0), SMOOTHING_PER_GRAIN * grain)
        gray = to_gray_uint8(image)
    ratio = brightness_ratio(image, light_across and light_across / scale)
    lengths = (line_lengths[0] * gray.shape[1], line_lengths[1] * gray.shape[0])
    ink = without_paper_lines(binarize(gray, threshold, ratio), ratio, lengths)
    if faint_edges and threshold == AUTO_THRESHOLD:
        ink = with_faint_edges(ink, ratio)
    note = note_mask(gray)
    return (ink if note is None else cv2.bitwise_and(ink, note)), scale


def preprocess_frame(frame, roi_fraction=0.5, threshold=AUTO_THRESHOLD):
    """Frame -> the ROI's ink and the 28x28 model input (None when there is no digit)."""
    roi = centered_roi(np.shape(frame), roi_fraction)
    # A digit's longest stroke (a 7's bar) spans at most ~60% of the ROI, a printed line all
    # of it; a 1 may be nearly as tall as the ROI, so only lines right across it go.
    # In number mode faint edges would join neighbouring digits; here the ROI holds one.
    ink, scale = ink_in(frame, roi, threshold, WORK_SIDE, line_lengths=(0.8, 1.0), faint_edges=True)
    mask = select_digit(ink)
    return Preprocessed(roi, ink, None if mask is None else mnist_input_from_mask(mask), scale)


# --------------------------------------------------------------------------------------
# Vision, number mode: a row of digits in a 3:1 band
# --------------------------------------------------------------------------------------

PRINTED_LINE_BANDS = 1.25  # a vertical run this many band heights long is a printed line
NUMBER_ASPECT = 3.0     # the whole-number band is about three times as wide as it is tall
SPECK_PENS = 2.5        # ink no bigger than this many pen widths is a dot or a speck ...
DRAWN_PENS = 4.0        # ... unless this many of its own stroke widths across, both ways (a ring)
SMALLEST_DIGIT = 0.03   # ... and so is ink smaller than this share of the band's height
                        # (6 px of 192: a short 0 in a row held far off is 8-10 px tall);
SPECK_REACH = 0.5       # but a speck this many pen widths from one digit's box is a piece of it
DOTTED_DASHES = 4       # a narrow piece of this many pieces or more ...
DOTTED_COVER = 0.75     # ... that covers less than this share of its height is a dotted line
SMALLEST_ROW = 0.1      # a row's tallest digit is at least this share of it: else it is noise
FLAT_RATIO = 0.35       # a piece this flat (height / width) is a bar or a dash, not a digit
BAR_HEIGHT = 0.45       # a piece this short (in line heights), floating high, is a loose bar
MOST_TILT = 0.3         # a row held askew climbs or falls at most this much per pixel (17 deg)
UPRIGHT_FROM_DEGREES = 3  # digits of a row tilted this much or more are turned upright
ONE_DIGIT_WIDTH = 1.1   # a digit is at most this wide, in line heights (a wide 0)
TWO_DIGITS_WIDTH = 0.75  # a blob narrower than this (in line heights) never holds two digits ...
TWO_DIGITS_WIDER = 1.4  # ... unless it is this much wider than the line's typical digit
THREE_DIGITS_WIDTH = 1.8  # a blob this wide (in line heights) may hold three digits
SURELY_TWO_WIDER = 1.6  # this much wider than the typical digit, one digit is ever less likely
CLUSTER_GAP = 1.5       # a gap this many line heights wide, and 3x the usual, ends a number
CUT_DOUBT = 0.5         # log-odds the halves of a cut blob must win by: cut only when clearly better
CUT_STROKE_DOUBT = 1.0  # ... and more for each stroke the cut crosses beyond one
SHORT_CUT_DOUBT = 0.1   # ... but less to part a short digit from a tall one it touches:
SHORT_PART = 0.75       # ... a part this much shorter than the other, on the same line:
SAME_FOOT = 0.15        # ... their feet within this share of the taller one's height
SINGLE_STROKE_WIDTH = 0.6  # a cut's part this wide (of its height) must cross two strokes
SINGLE_STROKE_SLIP = 0.1   # ... in more than this share of its columns to be a digit
FRAGMENT_SHARE = 0.3    # a piece a cut leaves this much smaller than its side's body goes back
MERGE_DOUBT = 0.3       # the same for joining two pieces that each look like a whole digit
SIDE_BY_SIDE_DOUBT = 1.5  # ... and for joining two pieces that stand apart, side by side
STACKED_BONUS = 2.0     # for joining pieces stacked in the same columns: digits stand side by side
WHOLE_HEIGHT = 0.6      # a piece this tall (in line heights) may be a digit on its own
NARROW_AS_ONE = 0.4     # a piece narrower than this share of its height is a 1, or a mark:
MARK_HEIGHT = 0.35      # ... a comma, when shorter than this (in line heights)
MARK_DOUBT = 2.0        # against reading such a mark as a digit ...
SKIP_DOUBT = 0.5        # ... and against leaving it out


def number_band(frame_shape, fraction=0.5):
    """(x, y, w, h) of the centred band read in number mode, about 3:1 and inside the frame."""
    frame_h, frame_w = frame_shape[:2]
    h = max(1, int(min(min(frame_h, frame_w) * fraction, 0.9 * frame_w / NUMBER_ASPECT)))
    w = max(1, min(frame_w, int(round(h * NUMBER_ASPECT))))
    return (frame_w - w) // 2, (frame_h - h) // 2, w, h


def columns_overlap(a, b):
    """How much of the narrower of two boxes lies in the other's columns (0-1)."""
    overlap = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    return max(0, overlap) / max(1, min(a[2], b[2]))


def columns_gap(a, b):
    """Horizontal distance between two boxes; negative when their columns overlap."""
    return max(a[0], b[0]) - min(a[0] + a[2], b[0] + b[2])


def rows_gap(a, b):
    """Vertical distance between two boxes; negative when their rows overlap."""
    return max(a[1], b[1]) - min(a[1] + a[3], b[1] + b[3])


@dataclass
class Piece:
    """Ink that belongs together: one or more components, with their box."""
    components: list
    box: tuple

    @property
    def area(self):
        return sum(c.area for c in self.components)

    def joined(self, other):
        return Piece(self.components + other.components, union_box([self.box, other.box]))

    @property
    def pen(self):
        return stroke_thickness(self.area, sum(c.perimeter for c in self.components))


def pieces_of(components):
    return [Piece([c], c.box) for c in components]


def pen_width(components):
    """The writing's stroke width in pixels, from all its ink (2 * area / perimeter)."""
    perimeter = sum(c.perimeter for c in components)
    return max(1.0, stroke_thickness(sum(c.area for c in components), perimeter)) if perimeter else 1.0


def is_speck(piece, pen, band_height):
    """A dot, a speck of dirt or noise: no bigger than a few pen widths, unless drawn with
    a finer pen (many of its own stroke widths across both ways: a small 0 or a 9's loop,
    not a printed line's short remains); or too small to be read as a digit at all."""
    size = max(piece.box[2], piece.box[3])
    drawn = min(piece.box[2], piece.box[3]) >= DRAWN_PENS * piece.pen
    return (size <= SPECK_PENS * pen and not drawn) or size < SMALLEST_DIGIT * band_height


def looks_whole(piece, line_height):
    """Tall enough to be a digit on its own."""
    return piece.box[3] >= WHOLE_HEIGHT * line_height


def is_narrow(piece):
    return piece.box[2] < NARROW_AS_ONE * piece.box[3]


def stack_broken_strokes(pieces, pen, band_height):
    """Join pieces stacked in the same columns with a small gap: a digit's broken stroke,
    a 5's detached bar, a 7's crossbar; then drop the specks that lie by no digit. Side-by-side
    digits never share columns this much.

    A piece small enough to be a speck may complete a digit (faint ink breaks a thin
    stroke into short pieces), but specks alone make none (a printed dashed line; JPEG's
    specks around a coloured stroke), unless one ends just above the other, no more than
    half a pen width apart: one stroke, broken (a short 1 in a fine pen beside a marker's
    digits, each half of it no bigger than the marker's specks)."""
    joined = []
    for piece in sorted(pieces, key=lambda p: p.box[1]):
        for i, other in enumerate(joined):
            gap = rows_gap(piece.box, other.box)
            near = gap <= max(2 * pen, 0.25 * min(piece.box[3], other.box[3]))
            specks = is_speck(piece, pen, band_height) and is_speck(other, pen, band_height)
            broken = not specks or 0 <= gap <= pen / 2
            if near and broken and columns_overlap(piece.box, other.box) >= 0.6:
                joined[i] = other.joined(piece)
                break
        else:
            joined.append(piece)
    digits = [p for p in joined if not is_speck(p, pen, band_height) and not is_dotted(p)]
    return with_specks_beside(digits, [p for p in joined if is_speck(p, pen, band_height)], pen)


def with_specks_beside(digits, specks, pen):
    """Each speck that lies by one digit's box, and by no other's, joins that digit: where a
    fine pen skips, a 9's loop or an 8's side comes loose as a short piece beside the rest.
    A speck between two digits, or away from any, is dirt or noise and is left out. The
    digits' own boxes are asked, so that noise around a digit cannot grow it speck by speck."""
    joined = list(digits)
    for speck in specks:
        near = [i for i, d in enumerate(digits) if boxes_near(speck.box, d.box, SPECK_REACH * pen)]
        if len(near) == 1:
            joined[near[0]] = joined[near[0]].joined(speck)
    return joined


def is_dotted(piece):
    """A narrow run of many short dashes with gaps nearly as long: what a faint printed line
    leaves where a shadow breaks it up and it is not found whole. A pen's stroke, however
    faint, breaks in a few places and covers most of its length."""
    if not is_narrow(piece) or len(piece.components) < DOTTED_DASHES:
        return False
    rows = np.zeros(piece.box[3], bool)
    for c in piece.components:
        rows[c.y - piece.box[1]:c.y - piece.box[1] + c.h] = True
    return rows.mean() < DOTTED_COVER


def line_nearest_centre(pieces, centre):
    """The pieces on the line of writing nearest the band's centre line (row `centre`).

    Pieces whose rows overlap make a line; rows above or below in the band are dropped.
    """
    lines = []
    for piece in sorted(pieces, key=lambda p: p.box[1]):
        if lines and rows_gap(union_box([p.box for p in lines[-1]]), piece.box) < 0:
            lines[-1].append(piece)
        else:
            lines.append([piece])
    return nearest_group(lines, centre, axis=1) if lines else []


def nearest_group(groups, centre, axis):
    """The group of pieces whose span of columns (axis 0) or rows (axis 1) lies nearest
    `centre`; of groups as near, the one with the most ink."""
    def distance(group):
        box = union_box([p.box for p in group])
        return outside(box[axis], box[axis + 2], centre), -sum(p.area for p in group)
    return min(groups, key=distance)


@dataclass
class LineSize:
    """What a digit of this line looks like: its height and, but for 1s, its width at that
    height; and where the line's middle is: `middle` at column `at`, climbing or falling
    by `slope` along the row when the paper is held askew."""
    height: float
    width: float
    middle: float
    slope: float = 0.0
    at: float = 0.0

    def middle_at(self, x):
        return self.middle + self.slope * (x - self.at)


def line_size(pieces, slope_from=3):
    """Most digits' height (a long tail or a small 0 does not set it), a full-height digit's
    typical width and the middle line, sloping when `slope_from` digits or more stand tall
    enough to tell it."""
    heights = sorted(p.box[3] for p in pieces)
    height = float(heights[(3 * len(heights)) // 4])     # the upper quartile
    # Each digit's width as if it stood the line's full height: a short digit is narrow
    # for its size, not a sign that a wide one beside it holds two.
    widths = [height * p.box[2] / p.box[3] for p in pieces if not is_narrow(p)] or [0.7 * height]
    tall = [p for p in pieces if looks_whole(p, height)]
    xs = [p.box[0] + p.box[2] / 2 for p in tall]
    ys = [p.box[1] + p.box[3] / 2 for p in tall]
    slope = 0.0
    if len(tall) >= slope_from and max(xs) > min(xs):
        slope = float(np.clip(np.polyfit(xs, ys, 1)[0], -MOST_TILT, MOST_TILT))
    at = float(statistics.median(xs))      # on a few numbers, ten times np.median's speed
    return LineSize(height, statistics.median(widths),
                    float(statistics.median([y - slope * (x - at) for x, y in zip(xs, ys)])), slope, at)


def nearest_cluster(pieces, size, band_width):
    """The digits written together nearest the band's centre. A gap much wider than the
    number's usual spacing ends it: beyond lies a paper's edge, or another number."""
    gaps = [b.box[0] - (a.box[0] + a.box[2]) for a, b in zip(pieces, pieces[1:])]
    widest = max(CLUSTER_GAP * size.height, 3 * statistics.median(gaps)) if gaps else 0
    clusters = [[pieces[0]]]
    for gap, piece in zip(gaps, pieces[1:]):
        if gap > widest:
            clusters.append([])
        clusters[-1].append(piece)
    return nearest_group(clusters, band_width / 2, axis=0)


def is_bar(piece, size):
    """A bar or a stroke come loose: flat, or short, not narrow and floating above the
    line's middle (a 5's bar). A short digit, a small 0, stands on the line."""
    x, y, w, h = piece.box
    floating = h < BAR_HEIGHT * size.height and w >= h and y + h < size.middle_at(x + w / 2)
    return h < FLAT_RATIO * w or floating


def at_top_of(bar, digit):
    """The bar lies level with the digit's upper half: where a 5's or a 7's bar is drawn."""
    middle = bar.box[1] + bar.box[3] / 2
    return digit.box[1] - bar.box[3] <= middle <= digit.box[1] + digit.box[3] / 2


def bar_owner(bar, digits, pen):
    """The digit a bar belongs to: the one whose columns it shares most; else the one whose
    top it ends beside, within two pen widths (a 5's bar or a 7's that came loose where the
    stroke turns, drawn out past the rest of the digit). None for a dash, an underline, an
    apostrophe, or what a printed line leaves, thinner than the pen: they are not part of
    the number."""
    overlaps = [columns_overlap(bar.box, d.box) for d in digits]
    if overlaps and max(overlaps) > 0.3:
        return int(np.argmax(overlaps))
    beside = [(columns_gap(bar.box, d.box), i) for i, d in enumerate(digits) if at_top_of(bar, d)]
    gap, i = min(beside, default=(np.inf, None))
    return i if gap <= 2 * pen and bar.box[3] >= pen / 2 else None


def attach_bars(pieces, size, pen):
    """Every bar joined to the digit it belongs to; bars that belong to none are dropped."""
    digits = [p for p in pieces if not is_bar(p, size)]
    for bar in (p for p in pieces if is_bar(p, size)):
        i = bar_owner(bar, digits, pen)
        if i is not None:
            digits[i] = digits[i].joined(bar)
    return digits


@dataclass
class Option:
    """One way to read the row's pieces [start, stop) as digits: whole, joined or cut."""
    start: int
    stop: int
    digits: list          # (box in band, 0/255 mask, later the 28x28 input) per digit
    prior: float          # log-odds against this reading from its shape, before the model


def middle_columns(width):
    """Where a blob of this width may be cut: not near its ends, where one digit's strokes
    reach out (a 7's bar, a 2's tail)."""
    return slice(int(0.2 * width), int(0.8 * width) + 1)


def cut_columns(mask, pen, most=4):
    """Where a blob could be cut into two digits: the columns where the least ink crosses,
    against the columns around them (a pen width either side), and well apart."""
    w = mask.shape[1]
    ink_per_column = np.count_nonzero(mask, axis=0).astype(np.float32)[None]
    reach = max(1, int(pen / 2))
    # The least ink within reach of each column: an erosion of the column counts.
    least = cv2.erode(ink_per_column, np.ones((1, 2 * reach + 1), np.uint8),
                      borderType=cv2.BORDER_REPLICATE)
    middle = np.arange(w)[middle_columns(w)]
    valleys = middle[ink_per_column[0, middle] == least[0, middle]]
    ink_per_column = ink_per_column[0]
    cuts = []
    for column in sorted(valleys, key=lambda c: ink_per_column[c]):
        if all(abs(column - c) > 0.1 * w for c in cuts):
            cuts.append(column)
        if len(cuts) == most:
            break
    return cuts


def whole_prior(box, size):
    """Against one digit as wide as two: nothing up to a wide 0, then more and more."""
    return max(0.0, box[2] / size.height - ONE_DIGIT_WIDTH) + \
        max(0.0, box[2] / size.width - SURELY_TWO_WIDER)


def split_at(mask, cut):
    """A blob's mask cut in two at column `cut`, as two full-size masks.

    A vertical cut leaves the tip of a stroke that reached across it on the wrong side: a
    small fragment cut off from its half's main body goes back to the other half.
    """
    left, right = mask.copy(), mask.copy()
    left[:, cut:], right[:, :cut] = 0, 0
    for half, other in ((left, right), (right, left)):
        contours, _ = cv2.findContours(half, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        if len(contours) < 2:
            continue
        areas = [cv2.contourArea(c) + len(c) for c in contours]   # the outline counts too
        largest = max(areas)
        for contour, area in zip(contours, areas):
            if area < FRAGMENT_SHARE * largest:
                fragment = np.zeros_like(half)
                cv2.drawContours(fragment, [contour], -1, 255, cv2.FILLED)
                fragment = cv2.bitwise_and(fragment, half)
                cv2.bitwise_or(other, fragment, dst=other)
                cv2.bitwise_xor(half, fragment, dst=half)
    return left, right


def box_of(mask, origin):
    x, y, w, h = cv2.boundingRect(cv2.findNonZero(mask))
    return origin[0] + x, origin[1] + y, w, h


def runs_per_column(mask):
    """How many separate strokes each column of a mask crosses."""
    inked = mask > 0
    return inked[0] + np.count_nonzero(inked[1:] & ~inked[:-1], axis=0)


def is_single_stroke(mask):
    """One stroke and nothing across it, wider than a 1 (a tail, a bar, a curve): every digit
    but a 1 crosses two strokes in some of its columns."""
    h, w = mask.shape
    crossed_twice = np.count_nonzero(runs_per_column(mask) >= 2)
    return w >= SINGLE_STROKE_WIDTH * h and crossed_twice < SINGLE_STROKE_SLIP * w


def may_hold_two(piece, runs, others, size):
    """Wide enough to be two digits touching: wider than the line is tall; or as wide as
    three quarters of it, and much wider than the line's other digits or with a neck (a
    column in its middle crossing a single stroke, where a 1 touches a 0)."""
    w = piece.box[2]
    if w >= size.height:
        return True
    if w < TWO_DIGITS_WIDTH * size.height:
        return False
    widths = [p.box[2] for p in others if p.box[2] >= ONE_RATIO * p.box[3]]
    if widths and w >= TWO_DIGITS_WIDER * statistics.median(widths):
        return True
    return bool(np.any(runs[middle_columns(w)] == 1))


def cut_options(index, piece, mask, runs, pen, size):
    """A blob too wide for one digit of this line, cut in two where digits may touch, or
    in three when it is as wide as three.

    Digits that merely touch are cut through a single stroke; a cut through one digit
    (a 0) crosses two.
    """
    x, y, w, h = piece.box
    cuts = cut_columns(mask, pen)
    ways = [(cut,) for cut in cuts]
    if w >= THREE_DIGITS_WIDTH * size.height:
        ways += [pair for pair in itertools.combinations(sorted(cuts), 2)
                 if pair[1] - pair[0] >= 0.25 * w]
    options = []
    for way in ways:
        parts = split_all(mask, way)
        if not all(part.any() for part in parts):
            continue
        digits = [(box_of(part, (x, y)), crop_to_ink(part)) for part in parts]
        # Every part must be a digit: as tall as one (a 5's long bar cut off is not) and no
        # single stroke wider than a 1 (a 2's long tail); its width is doubted as any digit's.
        if all(box[3] >= 0.5 * h and not is_single_stroke(part) for box, part in digits):
            prior = cut_doubt(way, runs, [box for box, _ in digits]) + \
                sum(whole_prior(box, size) for box, _ in digits)
            options.append(Option(index, index + 1, digits, prior))
    return options


def cut_doubt(way, runs, boxes):
    """Against cutting a blob at the columns `way` into parts with these boxes. A short
    digit against a tall one reads, whole, as the tall one alone and surely: a cut into a
    short and a tall part on the same line, through a single stroke, is doubted less. A
    wide single digit seldom cuts so: its parts are of its full height, or one floats high
    (a 7's bar), or is a lone stroke (a 2's tail, never a digit); a 4 whose arm reaches
    down to the line is the exception seen."""
    if len(boxes) == 2 and all(runs[cut] == 1 for cut in way) and short_beside_tall(*boxes):
        return SHORT_CUT_DOUBT
    return sum(CUT_DOUBT + CUT_STROKE_DOUBT * max(0, runs[cut] - 1) for cut in way)


def short_beside_tall(a, b):
    """Whether of two boxes one is much shorter, and both end at the same foot."""
    short, tall = sorted((a, b), key=lambda box: box[3])
    same_foot = abs((short[1] + short[3]) - (tall[1] + tall[3])) <= SAME_FOOT * tall[3]
    return short[3] <= SHORT_PART * tall[3] and same_foot


def split_all(mask, cuts):
    """A blob's mask cut at each of the columns `cuts` (left to right), as full-size masks."""
    parts, rest = [], mask
    for cut in sorted(cuts):
        part, rest = split_at(rest, cut)
        parts.append(part)
    return parts + [rest]


def rows_overlap(a, b):
    """How much of the shorter of two boxes lies in the other's rows (0-1)."""
    return max(0, -rows_gap(a, b)) / max(1, min(a[3], b[3]))


def may_join(a, b, pen, size):
    """Two neighbours that could be one digit: sharing columns, or nearly touching, and
    together no wider than a digit."""
    close = columns_overlap(a.box, b.box) > 0.2 or b.box[0] - (a.box[0] + a.box[2]) <= 1.5 * pen
    return close and union_box([a.box, b.box])[2] <= ONE_DIGIT_WIDTH * size.height


def is_mark(piece, size):
    """A short narrow stroke (a comma, a tick): narrow as a 1, but not a third as tall."""
    return is_narrow(piece) and piece.box[3] < MARK_HEIGHT * size.height


def join_prior(a, b, size):
    """For or against reading two neighbouring pieces as one digit, from their shapes.

    Digits stand side by side: two pieces side by side, apart, are probably two digits
    (more so when each looks whole), and pieces one above the other are probably one.
    """
    columns, rows = columns_overlap(a.box, b.box), rows_overlap(a.box, b.box)
    side_by_side = SIDE_BY_SIDE_DOUBT if columns <= 0.1 and rows >= 0.5 else 0.0
    both_whole = MERGE_DOUBT if looks_whole(a, size.height) and looks_whole(b, size.height) else 0.0
    stacked = max(columns - 0.3, 0.6 - rows, 0.0)
    return side_by_side + both_whole - STACKED_BONUS * stacked


def number_options(labels, pieces, pen, size):
    """Every way to read each piece or pair of neighbouring pieces, for the reader to choose:
    whole, cut in two, joined with the next, or (a comma, a tick) left out."""
    options = []
    for i, piece in enumerate(pieces):
        mask = mask_of(labels, piece.components)
        mark = is_mark(piece, size)
        options.append(Option(i, i + 1, [(piece.box, mask)],
                              whole_prior(piece.box, size) + (MARK_DOUBT if mark else 0.0)))
        if mark:
            options.append(Option(i, i + 1, [], SKIP_DOUBT))
        runs = runs_per_column(mask)
        if may_hold_two(piece, runs, pieces[:i] + pieces[i + 1:], size):
            options += cut_options(i, piece, mask, runs, pen, size)
        if i + 1 < len(pieces) and may_join(piece, pieces[i + 1], pen, size):
            pair = piece.joined(pieces[i + 1])
            options.append(Option(i, i + 2, [(pair.box, mask_of(labels, pair.components))],
                                  join_prior(piece, pieces[i + 1], size) + whole_prior(pair.box, size)))
    return options


def upright(mask, angle):
    """A digit's mask turned back by its row's tilt (`angle` degrees): a sheet held askew
    tilts every digit on it too."""
    if abs(angle) < UPRIGHT_FROM_DEGREES:
        return mask
    pad = max(mask.shape) // 3
    padded = cv2.copyMakeBorder(mask, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    h, w = padded.shape
    turned = cv2.warpAffine(padded, cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0), (w, h))
    return crop_to_ink(turned) if turned.any() else mask


EDGE_COLUMNS = 3        # a digit cut by the band's side leaves ink in its outermost columns


def without_specks(ink, pen, band_height):
    """The ink less its blobs that are specks (is_speck), those at its edges included.
    Their outlines are not measured here, so small ink counts as a speck, drawn or not."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    speck = [True] + [is_speck(Component(i, *stats[i, :5]), pen, band_height) for i in range(1, count)]
    return np.where(np.array(speck)[labels], 0, ink).astype(np.uint8)


def runs_past_band(ink, pieces, pen, size, band_rows):
    """Whether the number goes on past the band's left or right side: ink in the side's
    outermost columns, on the line and no taller than a digit (a sheet's or a shadow's
    edge runs the band's height), as near the number as its own digits are to each other.
    Read, the number would lose its first or last digits: better none than a wrong one.
    Specks do not count: what a printed line leaves after its removal lies on the line too."""
    top, height = band_rows
    band = ink[top:top + height]
    w = ink.shape[1]
    x, _, width, _ = union_box([p.box for p in pieces])
    sides = ((slice(0, EDGE_COLUMNS), x, 0), (slice(w - EDGE_COLUMNS, w), w - x - width, w))
    sides = [(columns, at) for columns, gap, at in sides
             if gap <= CLUSTER_GAP * size.height and band[:, columns].any()]
    if sides:
        band = without_specks(band, pen, height)
    for columns, at in sides:
        rows = top + np.flatnonzero(np.count_nonzero(band[:, columns], axis=1))
        if not len(rows):
            continue
        on_line = outside(rows[0], rows[-1] - rows[0] + 1, size.middle_at(at)) <= size.height / 2
        if on_line and rows[-1] - rows[0] < 1.5 * size.height:
            return True
    return False


def within_rows(box, band_rows):
    """Whether the box lies wholly within the band's rows (top, height), off their edges."""
    return band_rows[0] < box[1] and box[1] + box[3] < band_rows[0] + band_rows[1]


def ends_beyond_band(pieces, size):
    """Of the pieces not wholly within the band, those on the row's own line (their middle
    within half a line height of it): the end digits of a row held askew. A row above or
    below that reaches into the band lies a line's spacing off it."""
    return [p for p in pieces
            if abs(p.box[1] + p.box[3] / 2 - size.middle_at(p.box[0] + p.box[2] / 2)) <= size.height / 2]


def segment_number(ink, band_rows=None):
    """The row of digits in `ink`, whose band has the rows (top, height; by default all of
    it) and the reach around them: (number of pieces, every Option to read them, whether
    the number runs past the band and is left unread).

    The row is found among the ink wholly within the band; then ink that crosses the
    band's edge joins it where it lies on the row's line (a row held askew)."""
    top, height = band_rows or (0, ink.shape[0])
    labels, components = ink_components(ink)
    inside, beyond = [], []
    for c in components:
        (inside if within_rows(c.box, (top, height)) else beyond).append(c)
    pen = pen_width(inside)
    pieces = line_nearest_centre(stack_broken_strokes(pieces_of(inside), pen, height), top + height / 2)
    if not pieces or max(p.box[3] for p in pieces) < SMALLEST_ROW * height:
        return 0, [], False
    beyond = [p for p in pieces_of(beyond) if not is_speck(p, pen, height)]
    pieces += ends_beyond_band(beyond, line_size(pieces, slope_from=2))
    pieces = sorted(attach_bars(pieces, line_size(pieces), pen), key=lambda p: p.box[0] + p.box[2] / 2)
    if not pieces:
        return 0, [], False
    size = line_size(pieces)
    pieces = nearest_cluster(pieces, size, ink.shape[1])
    if runs_past_band(ink, pieces, pen, size, (top, height)):
        return 0, [], True
    options = number_options(labels, pieces, pen, size)
    tilt = float(np.degrees(np.arctan(size.slope)))
    for option in options:
        option.digits = [(box, upright(mask, tilt)) for box, mask in option.digits]
    return len(pieces), options, False


@dataclass
class NumberPreprocessed:
    roi: tuple            # the band (x, y, w, h) in the frame
    ink: np.ndarray       # the band at working size
    pieces: int           # how many pieces of ink the row was split into
    options: list         # Options, their digits as (box in the ink, 28x28 model input)
    scale: float = 1.0    # frame pixels per ink pixel
    past_band: bool = False  # the number runs past the band's side, and is left unread

    def panels(self):
        return [("binarized", self.ink)]


ROW_REACH = 0.3      # a row held askew leaves the band at its ends: its end digits are read
                     # whole from this much more (a share of the band's height) above and below


def reach_around(band, frame_shape):
    """The band grown by ROW_REACH of its height above and below, within the frame."""
    x, y, w, h = band
    top, bottom = max(0, y - int(ROW_REACH * h)), min(frame_shape[0], y + h + int(ROW_REACH * h))
    return x, top, w, bottom - top


def preprocess_number(frame, roi_fraction=0.5, threshold=AUTO_THRESHOLD):
    """Frame -> the ways to read the row of digits in the centred band, as model inputs."""
    band = number_band(np.shape(frame), roi_fraction)
    reach = reach_around(band, np.shape(frame))
    # A row of digits is written along the band, and no digit in it is taller than the band:
    # a straight run longer than a digit can be is printed. Squared paper's faint lines, which
    # the blur and the light break, rarely run unbroken across the whole reach. (As the
    # opening counts the outside as ink, a run from the reach's edge needs half that length.)
    # The working scale and the paper's light are the band's, as if it were read alone.
    vertical = min(1.0, PRINTED_LINE_BANDS * band[3] / reach[3])
    ink, scale = ink_in(frame, reach, threshold, round(WORK_BAND_HEIGHT * reach[3] / band[3]),
                        line_lengths=(1 / NUMBER_ASPECT, vertical), light_across=band[3])
    top, height = round((band[1] - reach[1]) / scale), round(band[3] / scale)
    count, options, past_band = segment_number(ink, (top, height))
    for option in options:   # boxes from the band's top, as it is drawn
        option.digits = [((x, y - top, w, h), mnist_input_from_mask(mask))
                         for (x, y, w, h), mask in option.digits]
    return NumberPreprocessed(band, ink[top:top + height], count, options, scale, past_band)


# --------------------------------------------------------------------------------------
# Inference
# --------------------------------------------------------------------------------------

@dataclass
class Reading:
    """The answer in single-digit mode; in number mode, one digit of the row."""
    digit: object        # int 0-9, or None when there is no digit
    confidence: float
    uncertain: bool = False
    box: tuple = None    # in number mode: where this digit is, in the band's ink

    @property
    def found(self):
        return self.digit is not None

    def fields(self):
        """This answer's fields in a predictions record."""
        return {"digit": self.digit, "confidence": round(self.confidence, 4),
                "uncertain": self.uncertain}

    def draw(self, canvas, roi, ink_scale):
        draw_single_answer(canvas, roi, self)


@dataclass
class NumberReading:
    """The answer in number mode: the row's digits, left to right."""
    digits: list         # Readings, each with its box
    past_band: bool = False   # none, because the number runs past the band's side

    @property
    def text(self):
        return "".join(str(r.digit) for r in self.digits)

    @property
    def found(self):
        return bool(self.digits)

    def fields(self):
        digits = [r.digit for r in self.digits]
        return {"digit": digits[0] if len(digits) == 1 else None,
                "confidence": round(min((r.confidence for r in self.digits), default=0.0), 4),
                "uncertain": any(r.uncertain for r in self.digits), "digits": digits,
                "number": self.text or None, "past_band": self.past_band}

    def draw(self, canvas, band, ink_scale):
        draw_number_answer(canvas, band, self, ink_scale)


def same_digit(a, b, min_overlap=0.6):
    """Whether two model inputs show the same digit: their inked pixels mostly overlap.

    Inputs are size- and mass-normalised, so a digit held with a shaky hand overlaps
    itself far more than it overlaps a different digit.
    """
    ink_a, ink_b = a > 0.3, b > 0.3
    union = np.count_nonzero(ink_a | ink_b)
    return union == 0 or np.count_nonzero(ink_a & ink_b) / union >= min_overlap


def best_reading(count, options, scores):
    """The options that cover pieces [0, count) with the highest total score (dynamic
    programming over the row, left to right). `scores` maps id(option) to (score, ...)."""
    best = {0: (0.0, [])}
    for stop in range(1, count + 1):
        ways = [(best[o.start][0] + scores[id(o)][0], best[o.start][1] + [o]) for o in options
                if o.stop == stop and o.start in best]
        if ways:
            best[stop] = max(ways, key=lambda way: way[0])
    return best.get(count, (0.0, []))[1]


SWITCH_MARGIN = 0.1    # the probability another digit must lead by to change a held answer


class DigitReader:
    """Model inference for the live loop, with probabilities averaged over a steady digit."""

    def __init__(self, model, min_confidence=0.6, smooth=1):
        self.model = model
        self.min_confidence = min_confidence
        self.recent = collections.deque(maxlen=max(1, smooth))
        self.total = np.zeros(10)       # the sum of `recent`, kept as they come and go
        self.previous_input = None
        self.shown = None               # the digit answered for the digit held now

    def probabilities(self, model_input):
        return self.model.probabilities(model_input[None])[0]

    def reset(self):
        """Forget the digit held so far: the next one starts its own average."""
        self.recent.clear()
        self.total[:] = 0
        self.previous_input = None
        self.shown = None

    def read(self, model_input):
        if model_input is None:
            self.reset()
            return Reading(None, 0.0)
        current = self.probabilities(model_input)
        if self.recent and self.is_new_digit(model_input, current):
            self.reset()
        self.previous_input = model_input
        if len(self.recent) == self.recent.maxlen:
            self.total -= self.recent[0]
        self.recent.append(current)
        self.total += current
        average = self.total / len(self.recent)
        digit = int(average.argmax())
        # A digit read two ways (an 8 or a 0?) keeps its answer until the other clearly leads.
        if self.shown is not None and average[self.shown] >= average[digit] - SWITCH_MARGIN:
            digit = self.shown
        self.shown = digit
        confidence = float(average[digit])
        return Reading(digit, confidence, confidence < self.min_confidence)

    def read_number(self, preprocessed):
        """The row's NumberReading, every option's digits read in a single model call.

        The row is read the way that scores best: the sum of its digits' log-probabilities
        minus the options' shape priors (recognition-based segmentation).
        """
        options = preprocessed.options
        inputs = [x for option in options for _, x in option.digits]
        if not inputs:
            return NumberReading([], preprocessed.past_band)
        answers = iter(self.model.probabilities(np.stack(inputs)))
        scored = {}
        for option in options:
            probabilities = [next(answers) for _ in option.digits]
            score = sum(float(np.log(p.max() + 1e-9)) for p in probabilities) - option.prior
            scored[id(option)] = (score, probabilities)
        readings = []
        for option in best_reading(preprocessed.pieces, options, scored):
            readings += [Reading(int(p.argmax()), float(p.max()), float(p.max()) < self.min_confidence,
                                 box) for (box, _), p in zip(option.digits, scored[id(option)][1])]
        return NumberReading(readings)

    def is_new_digit(self, model_input, current):
        """A changed shape, or a confident answer that disagrees with the average so far."""
        if not same_digit(self.previous_input, model_input):
            return True
        return current.max() >= 0.95 and current.argmax() != self.total.argmax()


# --------------------------------------------------------------------------------------
# Sources: camera, video file or image
# --------------------------------------------------------------------------------------

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}
CAMERA_OPEN_SECONDS = 20.0   # some backends take seconds to send the first picture
CAMERA_RETRY_SECONDS = 3.0


class FrameSource:
    """Frames from a camera, a video file or a still image, with one `read()`."""

    def __init__(self, capture=None, image=None, is_camera=False, fps=None, name="", first=None):
        self.capture, self.image, self.is_camera, self.name = capture, image, is_camera, name
        self.fps = fps
        self.image_served = False
        self.first = first      # a camera's first frame, read while opening it

    def read(self, repeat_image=False):
        """The next frame, or None at the end; a camera that stops is retried, then UserError."""
        if self.image is not None:
            if self.image_served and not repeat_image:
                return None
            self.image_served = True
            return self.image
        if self.first is not None:
            frame, self.first = self.first, None
            return frame
        ok, frame = self.capture.read()
        if ok and frame is not None:
            return frame
        if not self.is_camera:
            return None
        frame = first_frame(self.capture, CAMERA_RETRY_SECONDS)   # a camera may skip a beat
        if frame is not None:
            return frame
        raise UserError(f"camera {self.name} stopped delivering frames; check its cable "
                        "and start again", status=EXIT_FAILURE)

    def release(self):
        if self.capture is not None:
            self.capture.release()


# Backends users can name with --backend; where a platform has several, the ones to try first.
CAMERA_BACKENDS = {"any": cv2.CAP_ANY, "dshow": cv2.CAP_DSHOW, "msmf": cv2.CAP_MSMF,
                   "v4l2": cv2.CAP_V4L2, "avfoundation": cv2.CAP_AVFOUNDATION,
                   "gstreamer": cv2.CAP_GSTREAMER}
PROBE_SECONDS = 2.0       # --list-cameras: how long each index gets to send a frame


def camera_backends(platform, requested=None):
    """The backends to try, in order: the user's choice; else on Windows DirectShow, which
    opens most webcams at once, then Media Foundation; elsewhere the platform's default."""
    if requested:
        return [requested]
    return ["dshow", "msmf"] if platform == "win32" else ["any"]


def camera_hint(platform, suggest_listing=True):
    """What to try when a camera will not open or sends nothing, for this system."""
    if platform == "win32":
        hint = ("close other apps that use the camera (Zoom, Teams, the Camera app), or try "
                "--backend msmf or --backend dshow")
    elif platform == "darwin":
        hint = ("allow camera access for your terminal or IDE under System Settings > Privacy & "
                "Security > Camera, then start it again")
    else:
        hint = ("check that `ls /dev/video*` lists the camera and that you are in the video "
                "group (`groups`), and close other apps that use it")
    return f"{hint}; `python main.py --list-cameras` shows which cameras work" if suggest_listing else hint


def first_frame(capture, seconds, waiting=None):
    """The capture's first frame within `seconds`, or None. `waiting(elapsed)` is called
    while it waits and may return True to give up (the user pressed q)."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        ok, frame = capture.read()
        if ok and frame is not None:
            return frame
        if waiting and waiting(time.monotonic() - started):
            raise KeyboardInterrupt
        time.sleep(0.05)
    return None


def open_capture(index, backend, size=None):
    capture = cv2.VideoCapture(index, CAMERA_BACKENDS[backend])
    if capture.isOpened():
        # One buffered frame: the answer is about now, not half a second ago.
        capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        if size:
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])
    return capture


def open_camera(index, backend=None, size=None, waiting=None, platform=None):
    """The first backend that opens camera `index` and sends a frame, as a FrameSource;
    UserError with what to try on this system otherwise."""
    platform = platform or sys.platform
    opened_silent = False
    backends = camera_backends(platform, backend)
    for name in backends:
        capture = open_capture(index, name, size)
        if capture.isOpened():
            frame = first_frame(capture, CAMERA_OPEN_SECONDS / len(backends), waiting)
            if frame is not None:
                return FrameSource(capture, is_camera=True, name=str(index), first=frame)
            opened_silent = True
        capture.release()
    if opened_silent:
        raise UserError(f"camera {index} opened but sent no picture in {CAMERA_OPEN_SECONDS:.0f} s; "
                        f"another app may be using it: {camera_hint(platform)}")
    raise UserError(f"no camera at index {index}; connect one or pass --source FILE; "
                    f"{camera_hint(platform)}")


def list_cameras(backend=None, platform=None, indexes=range(10)):
    """Lines describing each camera that sends a picture: index, backend, frame size."""
    platform = platform or sys.platform
    found = []
    for index in indexes:
        for name in camera_backends(platform, backend):
            capture = open_capture(index, name)
            try:
                frame = first_frame(capture, PROBE_SECONDS) if capture.isOpened() else None
                if frame is not None:
                    found.append(f"camera {index}: backend {capture.getBackendName()}, "
                                 f"{frame.shape[1]}x{frame.shape[0]}")
                    break
            finally:
                capture.release()
    if not found:
        return [f"no cameras found at indexes {indexes[0]}-{indexes[-1]}: "
                + camera_hint(platform, suggest_listing=False)]
    return found


def open_file_source(path):
    path = Path(path).expanduser()
    if not path.exists():
        raise UserError(f"source not found: {path}")
    if not path.is_file():
        raise UserError(f"source is not a file: {path}")
    if not os.access(path, os.R_OK):
        raise UserError(f"source is not readable: {path}; check its permissions")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        image = read_image(path)
        if image is not None:
            return FrameSource(image=image, name=str(path))
    capture = cv2.VideoCapture(str(path))
    if capture.isOpened():
        ok, frame = capture.read()
        if ok and frame is not None:
            capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            fps = capture.get(cv2.CAP_PROP_FPS)
            return FrameSource(capture, fps=fps if 0 < fps < 1000 else None, name=str(path))
    capture.release()
    image = read_image(path)
    if image is not None:
        return FrameSource(image=image, name=str(path))
    raise UserError(f"cannot read {path} as a video or an image")


# --------------------------------------------------------------------------------------
# The window: overlay drawing (pure, on arrays) and controls
# --------------------------------------------------------------------------------------

WINDOW = "Digit reader"
TRACKBAR = "Threshold"
FONT = cv2.FONT_HERSHEY_SIMPLEX
GREEN, YELLOW, WHITE, BLACK, GREY = (60, 220, 60), (0, 220, 255), (255, 255, 255), (0, 0, 0), (160, 160, 160)


@functools.lru_cache(maxsize=256)
def label_patch(text, scale, color, thickness, pad):
    """Text on a filled dark box, rendered once: the same labels come back every frame."""
    (tw, th), base = cv2.getTextSize(text, FONT, scale, thickness)
    patch = np.zeros((th + base + 2 * pad, tw + 2 * pad, 3), np.uint8)
    cv2.putText(patch, text, (pad, pad + th), FONT, scale, color, thickness, cv2.LINE_AA)
    return patch, th + pad


def put_label(image, text, origin, scale=0.6, color=WHITE, thickness=1, pad=4):
    """Text on a filled dark box, readable on any background; `origin` is the text's
    baseline start, as for cv2.putText. Returns the box's size."""
    patch, above = label_patch(text, scale, color, thickness, pad)
    x, y = origin[0] - pad, origin[1] - above
    h, w = patch.shape[:2]
    left, top = max(x, 0), max(y, 0)
    right, bottom = min(x + w, image.shape[1]), min(y + h, image.shape[0])
    if right > left and bottom > top:
        image[top:bottom, left:right] = patch[top - y:bottom - y, left - x:right - x]
    return w, h


def draw_inset(canvas, panels, size):
    """Top-left: the binarized ROI (or band, at its own aspect) and the 28x28 model input,
    `size` pixels tall."""
    x0 = 8
    for title, image in panels:
        width = int(np.clip(size * image.shape[1] / max(image.shape[0], 1), 8, 3 * size))
        small = image.shape[0] < size   # the 28x28 input: big pixels, as the model sees it
        panel = cv2.resize(image, (width, size),
                           interpolation=cv2.INTER_NEAREST if small else cv2.INTER_AREA)
        if canvas.shape[0] < size + 30 or canvas.shape[1] < x0 + width:
            return
        canvas[22:22 + size, x0:x0 + width] = cv2.cvtColor(panel, cv2.COLOR_GRAY2BGR)
        cv2.rectangle(canvas, (x0, 22), (x0 + width - 1, 22 + size - 1), GREY, 1)
        put_label(canvas, title, (x0 + 2, 16), scale=0.4, pad=2)
        x0 += width + 8


DEFAULT_WINDOW_SIZE = (1280, 800)
WINDOW_CHROME = (0, 60)   # room the trackbar and the window's frame take beside the image


def screen_work_area():
    """The screen's usable size (w, h) where the system tells it cheaply, else None."""
    if sys.platform == "win32":
        import ctypes
        from ctypes import wintypes

        area = wintypes.RECT()
        if ctypes.windll.user32.SystemParametersInfoW(0x30, 0, ctypes.byref(area), 0):  # work area
            return area.right - area.left, area.bottom - area.top
    return None


def display_scale(frame_shape, window_size):
    """How much a frame is shrunk to fit the window (never enlarged)."""
    frame_h, frame_w = frame_shape[:2]
    room_w, room_h = (max(1, a - b) for a, b in zip(window_size, WINDOW_CHROME))
    return min(1.0, room_w / frame_w, room_h / frame_h)


def display_image(frame, scale):
    """The frame as the window shows it: BGR uint8, shrunk by `scale`."""
    frame = np.asarray(frame)
    if scale < 1:
        size = (max(1, round(frame.shape[1] * scale)), max(1, round(frame.shape[0] * scale)))
        frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
    if frame.ndim == 3 and frame.shape[2] == 3 and frame.dtype == np.uint8:
        return frame
    return cv2.cvtColor(to_gray_uint8(frame), cv2.COLOR_GRAY2BGR)


def scaled(box, scale):
    return tuple(int(round(v * scale)) for v in box)


def draw_single_answer(canvas, roi, reading):
    """The digit in large type on a filled box beside the ROI, with its confidence."""
    x, y, w, h = roi
    if reading.digit is None:
        text, color, scale = "no digit", GREY, 0.8
    else:
        text = f"{reading.digit}{'?' if reading.uncertain else ''}"
        color, scale = (YELLOW if reading.uncertain else GREEN), 3.0
    label_x = max(8, min(x + w + 14, canvas.shape[1] - 120))
    put_label(canvas, text, (label_x, y + 70), scale=scale, color=color,
              thickness=4 if scale > 1 else 2, pad=8)
    if reading.digit is not None:
        put_label(canvas, f"{reading.confidence:.0%}", (label_x, y + 110), scale=0.7)


def draw_number_answer(canvas, band, answer, ink_scale):
    """Each digit boxed with its own prediction, and the whole number below the band.

    `band` is in canvas pixels; the digits' boxes are in band ink pixels, `ink_scale`
    canvas pixels each.
    """
    x, y, w, h = band
    readings = answer.digits
    bottom = y + h        # a row held askew may reach below the band
    for reading in readings:
        bx, by, bw, bh = scaled(reading.box, ink_scale)
        color = YELLOW if reading.uncertain else GREEN
        cv2.rectangle(canvas, (x + bx, y + by), (x + bx + bw, y + by + bh), color, 1)
        put_label(canvas, str(reading.digit), (x + bx, y + by + bh + 22), scale=0.7, color=color,
                  thickness=2)
        bottom = max(bottom, y + by + bh + 26)   # under its label
    number = answer.text or ("number runs past the band: hold it further away"
                             if answer.past_band else "no number")
    # Below the band and its digits' labels: above it is the inset's place on small frames.
    put_label(canvas, number, (x + 4, min(canvas.shape[0] - 50, bottom + 48)),
              scale=1.6 if readings else 0.8,
              color=GREEN if readings else YELLOW if answer.past_band else GREY,
              thickness=3 if readings else 2, pad=6)


def status_text(fps, source_size, threshold):
    """Top right: speed, the size the source delivers, and the threshold in use."""
    size = f"{source_size[0]}x{source_size[1]}  " if source_size else ""
    mode = "auto" if threshold == AUTO_THRESHOLD else str(threshold)
    return f"{fps:4.0f} FPS  {size}threshold {mode}"


def draw_overlay(image, preprocessed, answer, *, inference_on=True, fps=0.0,
                 threshold=AUTO_THRESHOLD, sample_counts=None, scale=1.0, source_size=None):
    """The frame with ROI (or number band), answer, inset, FPS and status, on a BGR copy.

    `image` is the frame as shown, `scale` times its size (display_image): the overlay is
    drawn at display resolution, so it looks the same whatever the camera's resolution.
    `source_size` (w, h), the size the camera delivers, goes in the status.
    `answer` is a Reading, or a NumberReading in number mode.
    """
    canvas = display_image(image, 1.0).copy()
    roi = scaled(preprocessed.roi, scale)
    x, y, w, h = roi
    cv2.rectangle(canvas, (x, y), (x + w, y + h), GREEN if inference_on else GREY, 2)
    if inference_on:
        draw_inset(canvas, preprocessed.panels(), size=max(48, min(112, canvas.shape[0] // 5)))
        answer.draw(canvas, roi, preprocessed.scale * scale)
    speed = status_text(fps, source_size, threshold)
    (width, _), _ = cv2.getTextSize(speed, FONT, 0.5, 1)
    put_label(canvas, speed, (canvas.shape[1] - width - 12, 20), scale=0.5)
    if sample_counts:
        counts = " ".join(f"{d}:{n}" for d, n in sorted(sample_counts.items()))
        put_label(canvas, f"samples {counts}", (8, canvas.shape[0] - 36), scale=0.45)
    status = f"inference {'ON' if inference_on else 'OFF'} - {controls_help()}"
    put_label(canvas, status, (8, canvas.shape[0] - 10), scale=0.45,
              color=GREEN if inference_on else YELLOW)
    return canvas


def save_snapshot(folder, frame, preprocessed):
    """The full-resolution frame, its ROI (or band) and what the inset shows, as PNGs."""
    stamp = timestamped(folder)
    x, y, w, h = preprocessed.roi
    write_png(f"{stamp}-frame.png", frame)
    write_png(f"{stamp}-roi.png", frame[y:y + h, x:x + w])
    for title, image in preprocessed.panels():
        write_png(f"{stamp}-{title.replace(' ', '-')}.png", image)
    return stamp


def open_window():
    cv2.namedWindow(WINDOW, cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL)  # no Qt toolbar


QUIT_KEYS = (ord("q"), 27)


def show_waiting(message):
    """A `waiting(elapsed)` callback that shows `message` in the window while a camera
    opens, and returns True when the user presses q or Esc to give up."""
    open_window()

    def waiting(elapsed):
        card = np.zeros((240, 640, 3), np.uint8)
        put_label(card, message, (24, 110), scale=0.9, color=WHITE, thickness=2)
        put_label(card, f"{elapsed:.0f} s - q quits", (24, 160), scale=0.6, color=GREY)
        cv2.imshow(WINDOW, card)
        return cv2.waitKey(50) & 0xFF in QUIT_KEYS
    return waiting


# The window's controls: (keys, what they do). The status line, --help and the README's
# table are made from this one list; Controls.on_key does what it says.
CONTROLS = (
    ("click/space", "reading on/off"),
    ("m", "digit/number"),
    ("0-9", "save sample"),
    ("s", "snapshot"),
    ("q/Esc", "quit"),
)


def controls_help():
    return ", ".join(f"{keys} {does}" for keys, does in CONTROLS)


class Controls:
    """The window's mouse, keyboard and trackbar, and the state they set."""

    def __init__(self, threshold, number, samples, snapshots):
        self.inference_on, self.number = True, number
        self.samples, self.snapshots = samples, snapshots
        self.sample_counts = count_samples(samples)
        self.was_visible = False
        open_window()
        cv2.createTrackbar(TRACKBAR, WINDOW, threshold, 255, lambda value: None)
        cv2.setMouseCallback(WINDOW, self.on_mouse)

    @property
    def threshold(self):
        return max(0, cv2.getTrackbarPos(TRACKBAR, WINDOW))

    def on_mouse(self, event, x, y, flags, param):
        if event == cv2.EVENT_LBUTTONDOWN:
            self.inference_on = not self.inference_on

    def on_key(self, key, frame, preprocessed, reader):
        """Do what CONTROLS says `key` does, with the frame just shown."""
        if key == ord(" "):
            self.inference_on = not self.inference_on
        elif key == ord("m"):
            self.number = not self.number
            reader.reset()
        elif key == ord("s"):
            print(f"snapshot saved: {save_snapshot(self.snapshots, frame, preprocessed)}-*.png")
        elif ord("0") <= key <= ord("9") and not self.number and preprocessed.model_input is not None:
            print(f"sample saved: {save_sample(self.samples, key - ord('0'), preprocessed.model_input)}")
            self.sample_counts = count_samples(self.samples)

    def wants_to_quit(self, key):
        """q, Esc, or the window's X (it was shown, and is gone)."""
        try:
            visible = cv2.getWindowProperty(WINDOW, cv2.WND_PROP_VISIBLE) >= 1
        except cv2.error:
            visible = False
        # A new window may not be mapped yet on its first frames: that is not a close.
        self.was_visible = self.was_visible or visible
        return key in QUIT_KEYS or (self.was_visible and not visible)


# --------------------------------------------------------------------------------------
# Live loop
# --------------------------------------------------------------------------------------

class PredictionLog:
    """JSON Lines, one record per processed frame, and the run's summary."""

    def __init__(self, path):
        # Line-buffered, so a consumer can follow the file live and an interruption loses nothing.
        self.file = open(path, "w", encoding="utf-8", buffering=1) if path else None
        self.milliseconds = []
        self.frames = self.digits = 0

    def write(self, frame_index, answer, milliseconds, **extra):
        self.frames += 1
        self.digits += answer.found
        self.milliseconds.append(milliseconds)
        if self.file:
            record = {"frame": frame_index, **answer.fields(), "ms": round(milliseconds, 3), **extra}
            self.file.write(json.dumps(record) + "\n")

    def summary(self):
        median = float(np.median(self.milliseconds)) if self.milliseconds else 0.0
        return f"frames {self.frames}, digits read {self.digits}, median {median:.2f} ms per frame"

    def close(self):
        if self.file:
            self.file.close()


def read_frame(frame, reader, *, roi_fraction, threshold, number=False):
    """The whole per-frame pipeline, preprocessing and inference: (preprocessed, answer)."""
    if number:
        preprocessed = preprocess_number(frame, roi_fraction, threshold)
        return preprocessed, reader.read_number(preprocessed)
    preprocessed = preprocess_frame(frame, roi_fraction, threshold)
    return preprocessed, reader.read(preprocessed.model_input)


def idle_view(frame, roi_fraction, number):
    """What the window shows while inference is off: the ROI or band, nothing read."""
    frame_shape = np.shape(frame)
    roi = number_band(frame_shape, roi_fraction) if number else centered_roi(frame_shape, roi_fraction)
    return Preprocessed(roi, np.zeros((1, 1), np.uint8), None), Reading(None, 0.0)


def numbered_frames(source, max_frames, repeat_image=False):
    index = 0
    while max_frames is None or index < max_frames:
        frame = source.read(repeat_image=repeat_image)
        if frame is None:
            return
        yield index, frame
        index += 1


def milliseconds_since(started):
    return (time.perf_counter() - started) * 1000


def run_headless(source, reader, log, *, roi_fraction=0.5, threshold=AUTO_THRESHOLD,
                 number=False, max_frames=None, ctrl_c=None):
    for index, frame in numbered_frames(source, max_frames):
        if ctrl_c and ctrl_c.requested:
            break
        started = time.perf_counter()
        _, answer = read_frame(frame, reader, roi_fraction=roi_fraction, threshold=threshold,
                               number=number)
        log.write(index, answer, milliseconds_since(started))


class Screen:
    """Frames as the window shows them: shrunk to fit, with the overlay and its speed."""

    def __init__(self, window_size, fps=None):
        self.window_size, self.frame_pause = window_size, 1000.0 / fps if fps else 1.0
        self.shown, self.image, self.scale = None, None, 1.0
        self.fps, self.last = 0.0, time.perf_counter()

    def show(self, frame, preprocessed, answer, controls):
        if frame is not self.shown:  # a still image is shrunk for the screen once, not every loop
            self.scale = display_scale(frame.shape, self.window_size)
            self.shown, self.image = frame, display_image(frame, self.scale)
        cv2.imshow(WINDOW, draw_overlay(
            self.image, preprocessed, answer, inference_on=controls.inference_on, fps=self.fps,
            threshold=controls.threshold, sample_counts=controls.sample_counts,
            scale=self.scale, source_size=frame.shape[1::-1][:2]))

    def wait_for_key(self, started, still):
        """The key pressed while waiting for the next frame's time (a video's own pace)."""
        pause = 30 if still else max(1, int(self.frame_pause - milliseconds_since(started)))
        key = cv2.waitKey(pause) & 0xFF
        now = time.perf_counter()
        rate = 1.0 / max(now - self.last, 1e-6)
        self.fps, self.last = (0.9 * self.fps + 0.1 * rate if self.fps else rate), now
        return key


def run_window(source, reader, log, *, roi_fraction=0.5, threshold=AUTO_THRESHOLD,
               number=False, window_size=DEFAULT_WINDOW_SIZE, samples=Path("samples"),
               snapshots=Path("snapshots"), max_frames=None, ctrl_c=None):
    """The live window. Each frame: read it (while inference is on) and log the answer,
    show it under the overlay, wait for the next frame's time, and act on the key pressed."""
    controls = Controls(threshold, number, samples, snapshots)
    screen = Screen(window_size, source.fps)
    for index, frame in numbered_frames(source, max_frames, repeat_image=True):
        started = time.perf_counter()
        if controls.inference_on:
            preprocessed, answer = read_frame(frame, reader, roi_fraction=roi_fraction,
                                              threshold=controls.threshold, number=controls.number)
            log.write(index, answer, milliseconds_since(started), threshold=controls.threshold)
        else:
            preprocessed, answer = idle_view(frame, roi_fraction, controls.number)
        screen.show(frame, preprocessed, answer, controls)
        key = screen.wait_for_key(started, still=source.image is not None)
        if controls.wants_to_quit(key) or (ctrl_c and ctrl_c.requested):
            break
        controls.on_key(key, frame, preprocessed, reader)


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------

def checked(convert, within, span):
    """An argparse type: `convert` the text (int or float, named so in argparse's own
    message when that fails), then refuse a value that is not `span`, as `within` tests."""
    def value(text):
        number = convert(text)
        if not within(number):
            raise argparse.ArgumentTypeError(f"{number} is not {span}")
        return number
    value.__name__ = convert.__name__
    return value


threshold_value = checked(int, lambda v: 0 <= v <= 255, "within 0-255")
fraction_value = checked(float, lambda v: 0 < v <= 1, "within (0, 1]")
positive_int = checked(int, lambda v: v >= 1, "1 or more")
probability = checked(float, lambda v: 0 <= v <= 1, "within 0-1")


def size_value(text):
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHT, e.g. 1280x720") from None
    if width < 160 or height < 120:
        raise argparse.ArgumentTypeError(f"{text} is smaller than 160x120")
    return width, height


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, but not for switches (off) or options without one."""

    def _get_help_string(self, action):
        if action.default in (None, False):
            return action.help
        return super()._get_help_string(action)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Read handwritten digits from a webcam with an MNIST-trained Keras MLP.",
        formatter_class=HelpFormatter,
        epilog=f"Window controls: {controls_help()}; the Threshold trackbar: 0 automatic, "
               "1-255 a fixed cut. Offline? Set MNIST_NPZ or pass --data to a local mnist.npz.")
    model = parser.add_argument_group("model and data")
    model.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="model file to load or create")
    model.add_argument("--data", type=Path, default=os.environ.get("MNIST_NPZ") or None,
                       help="local mnist.npz (keys x_train, y_train, x_test, y_test) instead of "
                            "downloading; default: $MNIST_NPZ, else Keras's download")
    model.add_argument("--retrain", action="store_true", help="train even if the model file exists")
    model.add_argument("--epochs", type=positive_int, default=10, help="most epochs to train")
    model.add_argument("--seed", type=int, default=0, help="random seed for a repeatable training")
    model.add_argument("--finetune", action="store_true",
                       help="fine-tune the model on your own samples (see --samples), mixed "
                            "with MNIST, and save it if MNIST accuracy stays >= 98.5%%")
    evaluation = parser.add_argument_group("evaluation")
    evaluation.add_argument("--reports", type=Path, default=DEFAULT_REPORTS,
                            help="folder for plots, classification report and metrics.json")
    evaluation.add_argument("--evaluate", action="store_true",
                            help="evaluate even when the reports are up to date, or when MNIST "
                                 "could not be downloaded at an earlier start")
    evaluation.add_argument("--no-eval", action="store_true", help="skip the evaluation")
    evaluation.add_argument("--show-plots", action="store_true",
                            help="also open the evaluation plots in windows")
    live = parser.add_argument_group("live recognition")
    live.add_argument("--no-live", action="store_true", help="stop after the model and evaluation")
    live.add_argument("--source", default="0", help="webcam index, or a video or image file")
    live.add_argument("--backend", choices=sorted(CAMERA_BACKENDS),
                      help="camera backend (default: dshow then msmf on Windows, else the "
                           "system's own)")
    live.add_argument("--camera-size", type=size_value, metavar="WxH",
                      help="ask the camera for this resolution, e.g. 1280x720 (default: its own)")
    live.add_argument("--list-cameras", action="store_true",
                      help="list the cameras at indexes 0-9 that send a picture, and exit")
    live.add_argument("--roi", type=fraction_value, default=0.5,
                      help="ROI side as a fraction of the frame's shorter side, in (0, 1]")
    live.add_argument("--threshold", type=threshold_value, default=AUTO_THRESHOLD,
                      help="starting binarization threshold: 0 = automatic, 1-255 = fixed")
    live.add_argument("--min-confidence", type=probability, default=0.6,
                      help="answers below this probability are shown as uncertain")
    live.add_argument("--smooth", type=positive_int, default=5,
                      help="average the probabilities over this many frames of a steady digit")
    live.add_argument("--multi", dest="number", action="store_true",
                      help="read every digit of a whole number in a wider 3:1 band (key m)")
    live.add_argument("--samples", type=Path, default=Path("samples"),
                      help="folder of your own labelled digits (keys 0-9) for --finetune")
    live.add_argument("--headless", action="store_true", help="no window: process frames and exit")
    live.add_argument("--predictions", type=Path, help="write one JSON line per processed frame")
    live.add_argument("--max-frames", type=positive_int, help="stop after this many frames")
    live.add_argument("--window-size", type=size_value, metavar="WxH",
                      help="largest window; bigger frames are shown scaled down (default: the "
                           "screen's work area where known, else 1280x800)")
    live.add_argument("--snapshots", type=Path, default=Path("snapshots"),
                      help="folder for snapshots saved with the s key")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    return parser.parse_args(argv)


def train_and_save(options, x_train, y_train):
    print(f"training a new model on {len(x_train)} MNIST images (at most {options.epochs} epochs)")
    result = train_model(x_train, y_train, epochs=options.epochs, seed=options.seed)
    print(describe_training(result))
    info = {"history": result.history, "seconds": round(result.seconds, 2),
            "epochs": result.epochs, "seed": options.seed}
    broken = options.model.exists() and not model_is_loadable(options.model)
    if broken:
        # Keep the unusable file for inspection instead of silently destroying it.
        os.replace(options.model, options.model.with_name(options.model.name + ".broken"))
        print(f"kept the unusable old model as {options.model.name}.broken")
    save_model_atomically(result.model, options.model, info)
    print(f"saved model to {options.model}")
    return NumpyMLP.from_keras(result.model)


def prepare_model(options):
    """Load the model, or train it when it is missing or --retrain is given; --finetune
    then adapts it to the user's samples. Returns (model, whether it changed)."""
    if options.model.exists() and not options.retrain:
        model, changed = load_model(options.model), False
    else:
        (x_train, y_train), _ = load_mnist(options.data)
        model, changed = train_and_save(options, x_train, y_train), True
    if options.finetune:
        model, changed = finetune_and_save(options), True
    return model, changed


def evaluate_if_needed(options, model, trained):
    if options.no_eval:
        return
    current = reports_are_current(options.reports, options.model)
    if current and not (trained or options.evaluate):
        print(f"reports are up to date in {options.reports}/")
        return
    try_anyway = trained or options.evaluate or bool(options.data)
    if not try_anyway and names_model_file(Path(options.reports) / MNIST_UNAVAILABLE, options.model):
        print("skipping evaluation: MNIST could not be downloaded at an earlier start; "
              "--evaluate tries again, --data PATH (or MNIST_NPZ) reads a local mnist.npz")
        return
    try:
        _, (x_test, y_test) = load_mnist(options.data)
    except UserError as error:
        print(f"skipping evaluation: {error}")
        if not options.data:
            remember_mnist_unavailable(options.reports, options.model)
        return
    try:
        metrics = evaluate_model(model, x_test, y_test, options.model, options.reports,
                                 options.show_plots)
    except OSError as error:
        print(f"warning: cannot write reports to {options.reports}/ ({error.strerror or error}); "
              "check the folder's permissions and free space, or pass --reports DIR",
              file=sys.stderr)
        return
    (Path(options.reports) / MNIST_UNAVAILABLE).unlink(missing_ok=True)
    print(f"test accuracy {metrics['accuracy']:.4f}; reports written to {options.reports}/")


def check_display(headless, environ=os.environ, platform=sys.platform):
    """UserError when the window cannot open here; Qt would abort the whole process with a
    cryptic message. On a Wayland desktop the window goes through XWayland: the Qt inside
    opencv-python has only the X11 (xcb) platform plugin."""
    if headless or platform != "linux":
        return
    wayland = environ.get("XDG_SESSION_TYPE") == "wayland" or bool(environ.get("WAYLAND_DISPLAY"))
    if environ.get("DISPLAY"):
        if wayland:
            environ.setdefault("QT_QPA_PLATFORM", "xcb")
        return
    if wayland:
        raise UserError("the window needs XWayland, and this Wayland session has none (DISPLAY "
                        "is not set); enable XWayland, or run with --headless")
    raise UserError("no display for the window (DISPLAY is not set); "
                    "run with --headless, or from a desktop session")


def open_live_source(options):
    """The video source. A camera can take seconds to open: the window (or the terminal,
    headless) says so meanwhile, and q, Esc or Ctrl-C give up waiting."""
    if not str(options.source).isdigit():
        return open_file_source(options.source)
    message = f"opening camera {options.source}..."
    print(message, flush=True)
    waiting = None if options.headless else show_waiting(message)
    return open_camera(int(options.source), options.backend, options.camera_size, waiting)


def run_live(options, model, source):
    reader = DigitReader(model, options.min_confidence, options.smooth)
    log = PredictionLog(options.predictions)
    reading = dict(roi_fraction=options.roi, threshold=options.threshold, number=options.number,
                   max_frames=options.max_frames)
    try:
        with CtrlC() as ctrl_c:
            if options.headless:
                run_headless(source, reader, log, ctrl_c=ctrl_c, **reading)
            else:
                window_size = options.window_size or screen_work_area() or DEFAULT_WINDOW_SIZE
                run_window(source, reader, log, window_size=window_size, samples=options.samples,
                           snapshots=options.snapshots, ctrl_c=ctrl_c, **reading)
    finally:
        log.close()
        if not options.headless:
            cv2.destroyAllWindows()
        print(log.summary())


def main(argv=None):
    options = parse_args(argv)
    source = None
    try:
        if options.list_cameras:
            print("\n".join(list_cameras(options.backend)))
            return 0
        if not options.no_live:
            # Before any training: a missing camera or file is reported at once.
            check_display(options.headless)
            source = open_live_source(options)
        model, trained = prepare_model(options)
        evaluate_if_needed(options, model, trained)
        if source:
            run_live(options, model, source)
        return 0
    except UserError as error:
        if options.debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return error.status
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:  # a bug or an odd system: one line, the details on request
        if options.debug:
            raise
        print(f"error: unexpected {type(error).__name__}: {error} (run with --debug for the "
              "traceback)", file=sys.stderr)
        return EXIT_FAILURE
    finally:
        if source:
            source.release()  # the camera is free again however the run ended


if __name__ == "__main__":
    sys.exit(main())
