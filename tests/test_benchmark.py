"""benchmark.py runs and its JSON has every field (the times themselves belong to the benchmark)."""

import json
import subprocess
import sys

import benchmark
from conftest import ROOT


def test_benchmark_json_has_every_field_and_a_verdict_per_target(tmp_path, mnist_npz):
    out = tmp_path / "benchmark.json"
    result = subprocess.run([sys.executable, str(ROOT / "benchmark.py"), "--quick", "--data",
                             str(mnist_npz), "--output", str(out)], capture_output=True,
                            text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads(out.read_text())
    for mode in ("single", "number"):
        for stage in ("preprocess", "inference", "overlay", "total"):
            assert set(data["per_frame_ms"][mode][stage]) == {"median", "p95"}
    assert data["headless_fps"] > 0
    assert 0 < data["startup_s"]["first_frame"] <= data["startup_s"]["first_run_with_evaluation"]
    assert data["memory_mb"]["peak"] > 0 and data["memory_mb"]["app_summary"].startswith("frames 500,")
    assert {"import_and_load_s", "inference_ms_median", "peak_rss_mb"} <= set(data["keras_path"])
    assert data["training"] is None                      # a quick run leaves training out
    assert all(ms > 0 for ms in data["large_inputs_ms"].values())
    expected = set(benchmark.TARGETS) - {"training_s"}
    assert set(data["targets"]) == expected
    for check in data["targets"].values():
        assert set(check) == {"measured", "target", "met", "keras_path"}
    for name in expected:
        assert benchmark.TARGETS[name][2] in result.stdout


def test_training_fields_are_filled_by_the_training_measurement(mnist, monkeypatch):
    import numpy as np

    import main

    _, (x_test, y_test) = mnist

    class PerfectReader:
        @staticmethod
        def probabilities(x):
            return np.eye(10)[y_test[:len(x)]]

    # The real training is the benchmark's minute; here only its reporting is checked.
    monkeypatch.setattr(main, "load_mnist", lambda data: (mnist[0], (x_test, y_test)))
    monkeypatch.setattr(main, "train_model", lambda x, y, verbose=0: main.TrainingResult(
        "a Keras model", {}, 1.5, 2, [0.7, 0.8]))
    monkeypatch.setattr(main.NumpyMLP, "from_keras", lambda model: PerfectReader)
    assert benchmark.training(None) == {"seconds_total": 1.5, "epochs": 2,
                                        "seconds_per_epoch": [0.7, 0.8], "test_accuracy": 1.0}
