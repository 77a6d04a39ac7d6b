"""Benchmark of the live digit reader on this machine: prints each target with its verdict.

Measures, on camera-like video: per-frame time in both modes (preprocessing, inference,
overlay), headless throughput, start-up to the first processed frame (and the first run,
evaluation included), peak memory over a long headless run, and training. Beside the app's
NumPy path it measures the Keras path it replaced (import, per-frame predict_on_batch,
memory), in the same run.

    python benchmark.py                      # everything (about 3 minutes on 2 cores)
    python benchmark.py --skip-training      # without the ~1 minute training run
    python benchmark.py --quick              # a short smoke run, for tests

MNIST comes from --data, $MNIST_NPZ or Keras's download, as in main.py.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

import main
from tests import synthetic_camera   # the camera-like test material the tests use too

# Each target: name: (target, "max" or "min", what it is), by what it is about.
START_AND_MEMORY = {
    "startup_s": (1.0, "max", "start-up to the first frame, reports current (s)"),
    "first_run_s": (10.0, "max", "first run, evaluation included (s)"),
    "peak_rss_mb": (250, "max", "peak resident memory, long headless run (MB)"),
    "rss_growth_mb": (5, "max", "memory growth over that run (MB)"),
}
PER_FRAME = {
    "inference_ms_median": (0.1, "max", "inference per frame, median (ms)"),
    "frame_ms_median": (1.5, "max", "whole frame, single digit, median (ms)"),
    "number_frame_ms_median": (3.0, "max", "whole frame, number mode, median (ms)"),
    "headless_fps": (400, "min", "headless frames/s, decoding included"),
}
LARGE_INPUTS = {
    "photo_12mp_ms": (3.0, "max", "4032x3024 still, single digit, median (ms)"),
    "photo_12mp_number_ms": (6.0, "max", "4032x3024 still, number mode, median (ms)"),
    "video_1080p_ms": (3.0, "max", "1920x1080 video, single digit, median (ms)"),
    "video_1080p_number_ms": (6.0, "max", "1920x1080 video, number mode, median (ms)"),
}
TRAINING = {"training_s": (60.0, "max", "full training, 10 epochs (s)")}
TARGETS = {**START_AND_MEMORY, **PER_FRAME, **LARGE_INPUTS, **TRAINING}


def percentiles(samples_ms):
    return {"median": round(float(np.median(samples_ms)), 3),
            "p95": round(float(np.percentile(samples_ms, 95)), 3)}


def decode(video):
    capture, frames = cv2.VideoCapture(str(video)), []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


def stage_times(frames, read, draw):
    """Median and p95 of each stage of the live loop: preprocess, inference, overlay."""
    for frame in frames[:30]:  # warm caches and allocators first
        pre = read[0](frame)
        draw(frame, pre, read[1](pre))
    stages = {"preprocess": [], "inference": [], "overlay": [], "total": []}
    for frame in frames:
        t0 = time.perf_counter()
        pre = read[0](frame)
        t1 = time.perf_counter()
        answer = read[1](pre)
        t2 = time.perf_counter()
        draw(frame, pre, answer)
        t3 = time.perf_counter()
        for name, seconds in (("preprocess", t1 - t0), ("inference", t2 - t1),
                              ("overlay", t3 - t2), ("total", t3 - t0)):
            stages[name].append(seconds * 1000)
    return {name: percentiles(ms) for name, ms in stages.items()}


def per_frame_times(frames, number_frames, reader):
    def draw(frame, pre, answer):
        main.draw_overlay(frame, pre, answer, fps=30.0)

    single = (main.preprocess_frame, lambda pre: reader.read(pre.model_input))
    number = (main.preprocess_number, reader.read_number)
    return {"single": stage_times(frames, single, draw),
            "number": stage_times(number_frames, number, draw)}


def reading_ms(frames, reader, number=False, repeat=1):
    """Median time to read a frame (preprocessing and inference, as headless; no decoding)."""
    times = []
    for _ in range(repeat):
        for frame in frames:
            started = time.perf_counter()
            main.read_frame(frame, reader, roi_fraction=0.5, threshold=0, number=number)
            times.append((time.perf_counter() - started) * 1000)
    return round(float(np.median(times[len(times) // 10:])), 3)


def large_inputs(folder, data, reader, quick):
    """Reading a 12 MP phone photo and 1080p video, against the 640x480 targets' size."""
    rng = np.random.default_rng(4)
    if data:
        with np.load(data) as mnist:
            x_test = mnist["x_test"]
        digit = synthetic_camera.mnist_alpha(x_test[0])
        number = synthetic_camera.number_alpha(x_test[1:5], rng)
    else:
        digit = synthetic_camera.printed_digit_alpha(7, cv2.FONT_HERSHEY_SIMPLEX, 8)
        number = np.hstack([synthetic_camera.printed_digit_alpha(d, cv2.FONT_HERSHEY_SIMPLEX, 8)
                            for d in (2, 0, 2, 6)])
    photo = synthetic_camera.same_scene((4032, 3024), digit, seed=1)
    photo_number = synthetic_camera.same_scene((4032, 3024), number, seed=1, number=True)
    video, held = Path(folder) / "hd.avi", 10 if quick else 60
    synthetic_camera.write_video(video, [(digit, 7)] * held + [(number, None)] * held, rng,
                                 size=(1920, 1080))
    hd = decode(video)
    repeat = 3 if quick else 30
    return {"photo_12mp_ms": reading_ms([photo], reader, repeat=repeat),
            "photo_12mp_number_ms": reading_ms([photo_number], reader, True, repeat=repeat),
            "video_1080p_ms": reading_ms(hd[:held], reader),
            "video_1080p_number_ms": reading_ms(hd[held:], reader, True)}


def headless_fps(video, reader):
    """Frames per second of the headless loop, decoding included."""
    log = main.PredictionLog(None)
    started = time.perf_counter()
    main.run_headless(main.open_file_source(video), reader, log)
    return log.frames / (time.perf_counter() - started)


def seconds_to_first_frame(video, model_path, data, reports):
    """Wall time from `python main.py` to its first prediction on disk."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "first.jsonl"
        args = [sys.executable, str(main.HERE / "main.py"), "--source", str(video), "--headless",
                "--max-frames", "1", "--predictions", str(out), "--model", str(model_path),
                "--reports", str(reports)]
        if data:
            args += ["--data", str(data)]
        started = time.perf_counter()
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while not (out.exists() and out.read_text().strip()) and process.poll() is None:
            time.sleep(0.005)
        seconds = time.perf_counter() - started
        process.wait()
    return round(seconds, 2)


def proc_status_mb(pid, field):
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None


def headless_memory(video, frames, model_path):
    """Peak resident memory of `main.py --headless` over the video, and its growth.

    Sampled from /proc while it runs: growth is the resident size at the end against the
    size once a tenth of the frames had gone through (start-up and warm-up done).
    """
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "memory.jsonl"
        process = subprocess.Popen([sys.executable, str(main.HERE / "main.py"), "--source",
                                    str(video), "--headless", "--no-eval", "--model",
                                    str(model_path), "--predictions", str(out)],
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        samples, peak = [], 0.0   # (bytes of predictions written, resident MB)
        while process.poll() is None:
            rss, hwm = proc_status_mb(process.pid, "VmRSS"), proc_status_mb(process.pid, "VmHWM")
            if rss is not None:
                samples.append((out.stat().st_size if out.exists() else 0, rss))
                peak = max(peak, hwm or rss)
            time.sleep(0.02)
        written = out.stat().st_size
    summary = process.stdout.read().strip().splitlines()
    running = [rss for size, rss in samples if size >= written / 10] or [rss for _, rss in samples]
    return {"frames": frames, "peak": round(peak, 1), "after_warmup": round(running[0], 1),
            "at_end": round(running[-1], 1), "growth": round(running[-1] - running[0], 1),
            "app_summary": summary[-1] if summary else ""}


KERAS_PATH = """
import json, sys, time, resource
import numpy as np
started = time.perf_counter()
import keras, main
model = main.load_keras_model(sys.argv[1])
model.predict_on_batch(np.zeros((1, 28, 28), np.float32))
load_s = time.perf_counter() - started
inputs = np.load(sys.argv[2])
times = []
for x in inputs:
    t = time.perf_counter()
    model.predict_on_batch(x[None])
    times.append((time.perf_counter() - t) * 1000)
t = time.perf_counter()
for x in inputs[:20]:
    model.predict(x[None], verbose=0)
predict_ms = (time.perf_counter() - t) / min(20, len(inputs)) * 1000
print(json.dumps({"import_and_load_s": round(load_s, 2),
                  "inference_ms_median": round(float(np.median(times)), 3),
                  "model_predict_ms": round(predict_ms, 2),
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
"""


def keras_path(model_path, inputs):
    """The replaced path, measured in a fresh process: import Keras, load, predict_on_batch."""
    with tempfile.TemporaryDirectory() as folder:
        np.save(Path(folder) / "inputs.npy", np.stack(inputs))
        result = subprocess.run([sys.executable, "-c", KERAS_PATH, str(model_path),
                                 str(Path(folder) / "inputs.npy")], capture_output=True, text=True,
                                cwd=main.HERE, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if result.returncode != 0:
        return {"error": result.stderr.strip().splitlines()[-1:]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def training(data):
    (x_train, y_train), (x_test, y_test) = main.load_mnist(data)
    result = main.train_model(x_train, y_train, verbose=0)
    accuracy = main.accuracy_of(main.NumpyMLP.from_keras(result.model), x_test, y_test)
    return {"seconds_total": round(result.seconds, 1), "epochs": result.epochs,
            "seconds_per_epoch": [round(s, 2) for s in result.epoch_seconds],
            "test_accuracy": round(accuracy, 4)}


def machine():
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(), "python": platform.python_version(),
            "opencv": cv2.__version__, "numpy": np.__version__}


def verdicts(results):
    single, number = results["per_frame_ms"]["single"], results["per_frame_ms"]["number"]
    keras_side = results["keras_path"]
    measured = {
        "startup_s": (results["startup_s"]["first_frame"], keras_side.get("import_and_load_s")),
        "first_run_s": (results["startup_s"]["first_run_with_evaluation"], None),
        "inference_ms_median": (single["inference"]["median"], keras_side.get("inference_ms_median")),
        "frame_ms_median": (single["total"]["median"], None),
        "number_frame_ms_median": (number["total"]["median"], None),
        "headless_fps": (results["headless_fps"], None),
        "peak_rss_mb": (results["memory_mb"]["peak"], keras_side.get("peak_rss_mb")),
        "rss_growth_mb": (results["memory_mb"]["growth"], None),
    }
    if results["training"]:
        measured["training_s"] = (results["training"]["seconds_total"], None)
    measured.update({name: (value, None) for name, value in results["large_inputs_ms"].items()})
    checks = {}
    for name, (value, keras_value) in measured.items():
        target, kind, _ = TARGETS[name]
        checks[name] = {"measured": value, "target": target,
                        "met": value >= target if kind == "min" else value <= target,
                        "keras_path": keras_value}
    return checks


def print_table(results):
    print(f"{'stage (ms)':<34}{'median':>10}{'p95':>10}")
    for mode, stages in results["per_frame_ms"].items():
        for stage, values in stages.items():
            print(f"{mode + ' ' + stage:<34}{values['median']:>10.3f}{values['p95']:>10.3f}")
    print()
    print(f"{'':5}{'measure':<50}{'measured':>10}{'target':>9}{'Keras path':>12}")
    for name, check in results["targets"].items():
        keras_value = "" if check["keras_path"] is None else check["keras_path"]
        print(f"{'ok' if check['met'] else 'MISS':<5}{TARGETS[name][2]:<50}"
              f"{check['measured']:>10}{check['target']:>9}{keras_value:>12}")
    keras_side = results["keras_path"]
    if "model_predict_ms" in keras_side:
        print(f"Keras model.predict per frame, for scale: {keras_side['model_predict_ms']} ms")
    if results["training"]:
        t = results["training"]
        print(f"training: {t['seconds_total']} s for {t['epochs']} epochs "
              f"({', '.join(map(str, t['seconds_per_epoch']))} s each), "
              f"test accuracy {t['test_accuracy']}")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data", type=Path, default=os.environ.get("MNIST_NPZ") or None,
                        help="local mnist.npz (default: $MNIST_NPZ, else Keras's download)")
    parser.add_argument("--model", type=Path, default=main.DEFAULT_MODEL, help="model to time")
    parser.add_argument("--output", type=Path, default=Path("reports/benchmark.json"),
                        help="where to write the JSON results")
    parser.add_argument("--skip-training", action="store_true", help="skip the training run")
    parser.add_argument("--quick", action="store_true",
                        help="fewer frames and no training: a smoke run, numbers not comparable")
    return parser.parse_args(argv)


def camera_videos(folder, data, quick):
    """A single-digit video, a number video, and a long video for the memory run."""
    single, number, long = (Path(folder) / name for name in ("single.avi", "number.avi", "long.avi"))
    if data:
        synthetic_camera.mnist_test_video(single, data, count=20 if quick else 100, seed=3)
        synthetic_camera.number_video(number, data, count=10 if quick else 60, seed=3)
    else:
        synthetic_camera.printed_digits_video(single, repeats=2 if quick else 10)
        synthetic_camera.printed_digits_video(number, repeats=1)
    frames = decode(single)
    long_frames = 500 if quick else 10_000
    writer = cv2.VideoWriter(str(long), cv2.VideoWriter_fourcc(*"MJPG"), 30,
                             frames[0].shape[1::-1])
    for i in range(long_frames):
        writer.write(frames[i % len(frames)])
    writer.release()
    return frames, decode(number), (long, long_frames)


def run(options):
    model = main.load_model(options.model)
    reader = main.DigitReader(model, smooth=1)
    with tempfile.TemporaryDirectory() as folder:
        video = Path(folder) / "single.avi"
        frames, number_frames, (long_video, long_frames) = camera_videos(folder, options.data,
                                                                          options.quick)
        results = {"machine": machine(), "frames_in_video": len(frames),
                   "per_frame_ms": per_frame_times(frames, number_frames, reader),
                   "headless_fps": round(headless_fps(video, reader), 1)}
        reports = Path(folder) / "reports"
        first_run = seconds_to_first_frame(video, options.model, options.data, reports)
        results["startup_s"] = {"first_run_with_evaluation": first_run,
                                "first_frame": seconds_to_first_frame(video, options.model,
                                                                      options.data, reports)}
        results["memory_mb"] = headless_memory(long_video, long_frames, options.model)
        inputs = [x for x in (main.preprocess_frame(f).model_input for f in frames) if x is not None]
        results["keras_path"] = keras_path(options.model, inputs[:300])
        results["large_inputs_ms"] = large_inputs(folder, options.data, reader, options.quick)
    results["training"] = None if (options.quick or options.skip_training) else training(options.data)
    results["targets"] = verdicts(results)
    return results


def main_cli(argv=None):
    options = parse_args(argv)
    try:
        results = run(options)
    except main.UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.status
    print_table(results)
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(json.dumps(results, indent=1))
    print(f"results written to {options.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main_cli())
