"""benchmark.py runs and its JSON has every field (the times themselves belong to the benchmark)."""

import json
import subprocess
import sys

from conftest import ROOT


def test_benchmark_json_has_every_field(tmp_path, mnist_npz):
    out = tmp_path / "benchmark.json"
    result = subprocess.run([sys.executable, str(ROOT / "benchmark.py"), "--quick", "--data",
                             str(mnist_npz), "--output", str(out)], capture_output=True,
                            text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads(out.read_text())
    for stage in ("preprocess", "inference", "overlay", "total", "inference_when_a_digit_is_seen"):
        assert set(data["per_frame_ms"][stage]) == {"median", "p95"}
    assert data["headless_fps"] > 0
    assert set(data["startup_s"]) == {"first_frame", "imports"}
    assert set(data["predict_vs_app"]) == {"model_predict_ms", "app_path_ms", "ratio"}
    assert set(data["memory"]) == {"frames", "start_mb", "end_mb", "growth_mb"}
    assert {"cpus", "python", "tensorflow", "opencv"} <= set(data["machine"])
    assert "training" in data  # null in a quick run; see test_training_fields below
    for check in data["targets"].values():
        assert set(check) == {"measured", "target", "met"}
    assert "median" in result.stdout and "target" in result.stdout


def test_training_fields_are_filled_by_the_training_measurement(mnist, monkeypatch):
    import numpy as np

    import benchmark
    import main

    _, (x_test, y_test) = mnist

    class PerfectModel:
        @staticmethod
        def predict(x, **options):
            return np.eye(10)[y_test[:len(x)]]

    # The real training is the benchmark's minute; here only its reporting is checked.
    monkeypatch.setattr(main, "load_mnist", lambda data: (mnist[0], (x_test, y_test)))
    monkeypatch.setattr(main, "train_model", lambda x, y, verbose=0: main.TrainingResult(
        PerfectModel, {}, 1.5, 2, [0.7, 0.8]))
    assert benchmark.training(None) == {"seconds_total": 1.5, "epochs": 2,
                                        "seconds_per_epoch": [0.7, 0.8], "test_accuracy": 1.0}
