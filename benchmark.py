"""Benchmark of the live digit reader on this machine: prints a table, writes JSON.

Measures per-frame time (preprocessing, inference, overlay), headless throughput,
start-up to the first processed frame, training, model.predict against the app's
predict_on_batch path, and resident memory over a long headless run.

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
sys.path.insert(0, str(Path(__file__).resolve().parent / "tests"))
import synthetic_camera  # noqa: E402  (the tests' camera-like video maker)

TARGETS = {"inference_ms_median": 0.5, "frame_ms_median": 3.0, "headless_fps": 200,
           "startup_s": 4.0, "training_s": 60.0}


def percentiles(samples_ms):
    return {"median": round(float(np.median(samples_ms)), 3),
            "p95": round(float(np.percentile(samples_ms, 95)), 3)}


def resident_mb():
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # peak, where no /proc


def decode(video):
    capture, frames = cv2.VideoCapture(str(video)), []
    while True:
        ok, frame = capture.read()
        if not ok:
            return frames
        frames.append(frame)


def per_frame_times(frames, reader):
    """Each stage of the live loop timed separately, as it runs in the window."""
    for frame in frames[:30]:  # warm caches, allocators and TensorFlow's threads first
        main.draw_overlay(frame, *main.read_frame(frame, reader, 0.5, 0), True, 30.0, 0)
    stages = {"preprocess": [], "inference": [], "overlay": [], "total": []}
    with_digit = []
    for frame in frames:
        t0 = time.perf_counter()
        pre = main.preprocess_frame(frame)
        t1 = time.perf_counter()
        reading = reader.read(pre.model_input)
        t2 = time.perf_counter()
        main.draw_overlay(frame, pre, reading, True, 30.0, 0)
        t3 = time.perf_counter()
        for name, seconds in (("preprocess", t1 - t0), ("inference", t2 - t1),
                              ("overlay", t3 - t2), ("total", t3 - t0)):
            stages[name].append(seconds * 1000)
        with_digit.append(pre.model_input is not None)
    result = {name: percentiles(ms) for name, ms in stages.items()}
    inferred = [ms for ms, seen in zip(stages["inference"], with_digit) if seen]
    result["inference_when_a_digit_is_seen"] = percentiles(inferred or [0.0])
    return result


def headless_fps(video, reader):
    """Frames per second of the headless loop, decoding included."""
    log = main.PredictionLog(None)
    options = main.parse_args(["--headless", "--source", str(video)])
    started = time.perf_counter()
    main.run_headless(main.open_source(str(video)), reader, log, options)
    return log.frames / (time.perf_counter() - started)


def predict_versus_app_path(model, inputs):
    """The seed's per-frame model.predict against the app's predict_on_batch, same inputs."""
    def per_call_ms(call):
        call(inputs[0][None])  # warm-up, as the app does at start
        started = time.perf_counter()
        for x in inputs:
            call(x[None])
        return (time.perf_counter() - started) / len(inputs) * 1000
    predict_ms = per_call_ms(lambda x: model.predict(x, verbose=0))
    app_ms = per_call_ms(model.predict_on_batch)
    return {"model_predict_ms": round(predict_ms, 3), "app_path_ms": round(app_ms, 3),
            "ratio": round(predict_ms / app_ms, 1)}


def startup_seconds(video, model_path, data):
    """Wall time from `python main.py` to its first prediction, and of the imports alone."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "first.jsonl"
        args = [sys.executable, str(main.HERE / "main.py"), "--source", str(video), "--headless",
                "--max-frames", "1", "--predictions", str(out), "--model", str(model_path)]
        if data:
            args += ["--data", str(data)]
        started = time.perf_counter()
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while not (out.exists() and out.read_text().strip()) and process.poll() is None:
            time.sleep(0.005)
        first_frame = time.perf_counter() - started
        process.wait()
    imports = subprocess.run(
        [sys.executable, "-c", "import time; t = time.perf_counter(); import main, keras; "
         "print(time.perf_counter() - t)"], capture_output=True, text=True, cwd=main.HERE,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    return {"first_frame": round(first_frame, 2), "imports": round(float(imports.stdout.split()[-1]), 2)}


def training(data):
    (x_train, y_train), (x_test, y_test) = main.load_mnist(data)
    result = main.train_model(x_train, y_train, verbose=0)
    accuracy = main.accuracy_of(result.model, x_test, y_test)
    return {"seconds_total": round(result.seconds, 1), "epochs": result.epochs,
            "seconds_per_epoch": [round(s, 2) for s in result.epoch_seconds],
            "test_accuracy": round(accuracy, 4)}


def memory_over(frames, reader, count):
    """Resident memory before and after `count` frames through the whole per-frame pipeline."""
    for frame in frames[:50]:  # let allocators and caches settle first
        main.read_frame(frame, reader, 0.5, 0)
    start = resident_mb()
    for i in range(count):
        frame = frames[i % len(frames)]
        pre, reading = main.read_frame(frame, reader, 0.5, 0)
        main.draw_overlay(frame, pre, reading, True, 30.0, 0)
    end = resident_mb()
    return {"frames": count, "start_mb": round(start, 1), "end_mb": round(end, 1),
            "growth_mb": round(end - start, 1)}


def machine():
    import keras
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(), "python": platform.python_version(),
            "tensorflow": __import__("tensorflow").__version__, "keras": keras.__version__,
            "opencv": cv2.__version__, "numpy": np.__version__}


def verdicts(results):
    checks = {
        "inference_ms_median": results["per_frame_ms"]["inference_when_a_digit_is_seen"]["median"],
        "frame_ms_median": results["per_frame_ms"]["total"]["median"],
        "headless_fps": results["headless_fps"],
        "startup_s": results["startup_s"]["first_frame"],
    }
    if results["training"]:
        checks["training_s"] = results["training"]["seconds_total"]
    return {name: {"measured": value, "target": TARGETS[name],
                   "met": value >= TARGETS[name] if name == "headless_fps" else value <= TARGETS[name]}
            for name, value in checks.items()}


def print_table(results):
    rows = [("stage", "median", "p95")]
    for stage, values in results["per_frame_ms"].items():
        rows.append((f"{stage} (ms)", f"{values['median']:.3f}", f"{values['p95']:.3f}"))
    for stage, median, p95 in rows:
        print(f"{stage:<38}{median:>10}{p95:>10}")
    print()
    for name, check in results["targets"].items():
        mark = "ok " if check["met"] else "MISS"
        print(f"{mark} {name:<24} measured {check['measured']:<10} target {check['target']}")
    side = results["predict_vs_app"]
    print(f"model.predict {side['model_predict_ms']} ms vs app path {side['app_path_ms']} ms "
          f"per frame: {side['ratio']}x")
    memory = results["memory"]
    print(f"memory over {memory['frames']} frames: {memory['start_mb']} -> {memory['end_mb']} MB "
          f"({memory['growth_mb']:+} MB)")
    print(f"start-up to first frame {results['startup_s']['first_frame']} s, "
          f"of which imports {results['startup_s']['imports']} s")
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


def run(options):
    quick = options.quick
    model = main.load_model(options.model)
    reader = main.DigitReader(model, smooth=1)
    with tempfile.TemporaryDirectory() as folder:
        video = Path(folder) / "camera.avi"
        if options.data:
            synthetic_camera.mnist_test_video(video, options.data, count=20 if quick else 100,
                                              seed=3)
        else:
            synthetic_camera.printed_digits_video(video, repeats=2 if quick else 10)
        frames = decode(video)
        results = {"machine": machine(), "frames_in_video": len(frames),
                   "per_frame_ms": per_frame_times(frames, reader),
                   "headless_fps": round(headless_fps(video, reader), 1)}
        inputs = [main.preprocess_frame(f).model_input for f in frames[:60 if quick else 300]]
        inputs = [x for x in inputs if x is not None] or [np.zeros((28, 28), np.float32)]
        results["predict_vs_app"] = predict_versus_app_path(model, inputs)
        if options.data and not quick:
            # Start-up is timed with up-to-date reports, as a returning user has them.
            args = main.parse_args(["--model", str(options.model), "--data", str(options.data)])
            main.evaluate_if_needed(args, model, trained=False)
        results["startup_s"] = startup_seconds(video, options.model,
                                               options.data if not quick else None)
        results["memory"] = memory_over(frames, reader, 500 if quick else 10_000)
    results["training"] = None if (quick or options.skip_training) else training(options.data)
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
