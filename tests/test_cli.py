"""The `minigan` command: what a user types, what comes back, and the exit status."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from minigan.cli import main

TINY = ["--recipe", "mlp-ring8", "--steps", "4", "--batch-size", "16", "--quiet",
        "--set", "hidden=8", "--set", "layers=1", "--checkpoint-every", "2",
        "--device", "cpu"]


def _run(argv, capsys):
    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_train_sample_eval_round_trip(tmp_path, capsys):
    out = tmp_path / "run"
    status, stdout, _ = _run(["train", *TINY, "--out", str(out)], capsys)
    assert status == 0, stdout
    assert (out / "samples_final.png").exists() and (out / "eval.json").exists()
    assert json.loads((out / "eval.json").read_text())["n_modes"] == 8

    status, _, _ = _run(["sample", "--run", str(out), "--n", "9", "--out",
                         str(tmp_path / "s.npy")], capsys)
    assert status == 0
    samples = np.load(tmp_path / "s.npy")
    assert samples.shape == (9, 2)

    status, _, _ = _run(["sample", "--checkpoint", str(out / "checkpoints" / "latest"),
                         "--out", str(tmp_path / "s.png")], capsys)
    assert status == 0 and Image.open(tmp_path / "s.png").size == (480, 480)

    status, stdout, _ = _run(["eval", "--run", str(out), "--n", "500"], capsys)
    assert status == 0 and json.loads(stdout)["n_samples"] == 500


def test_resume_continues_to_a_new_total(tmp_path, capsys):
    out = tmp_path / "run"
    assert _run(["train", *TINY, "--out", str(out)], capsys)[0] == 0
    status, stdout, _ = _run(["train", "--resume", str(out), "--steps", "6", "--quiet"], capsys)
    assert status == 0 and "at step 4 of 6" in stdout
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps[-1] == 6


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--recipe", "nope"], "invalid choice: 'nope'"),
        (["train", "--steps", "many"], "invalid int value: 'many'"),
        (["train", "--set", "nonsense"], "--set expects KEY=VALUE"),
        (["train", "--set", "colour=blue"], "unknown config field 'colour'"),
        (["train", "--set", "objective=magic"], "objective must be one of"),
        (["train", "--batch-size", "0"], "batch_size must be >= 1"),
        (["train", "--config", "/no/such/file.toml"], "does not exist"),
        (["train", "--data", "/no/such/data", *TINY[:2]], "/no/such/data"),
        (["train", "--device", "cuda", *TINY[:2]], "device 'cuda' is unavailable"),
        (["sample", "--out", "x.png"], "give --run RUN_FOLDER or --checkpoint FILE"),
        (["sample", "--run", "/no/such/run", "--out", "x.png"], "no checkpoint"),
        ([], "choose a command"),
        (["train", "--threads", "0"], "--threads: expected a positive whole number, got '0'"),
        (["bench", "--threads", "two"], "expected a positive whole number, got 'two'"),
    ],
)
def test_bad_input_is_one_line_and_status_2(argv, message, capsys):
    status, _, err = _run(argv, capsys)
    assert status == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("minigan: error:"), err
    assert message in lines[0]


def test_bad_config_file_is_one_line_and_status_2(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("steps = [unclosed\n")
    status, _, err = _run(["train", "--config", str(bad)], capsys)
    assert status == 2 and "could not be parsed" in err and len(err.strip().splitlines()) == 1
    wrong = tmp_path / "wrong.toml"
    wrong.write_text('[train]\nsteps = "lots"\n')
    status, _, err = _run(["train", "--config", str(wrong)], capsys)
    assert status == 2 and "'steps' must be int" in err


def test_config_file_fields_are_used(tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text('recipe = "mlp-ring8"\nsteps = 2\nhidden = 8\nlayers = 1\n'
                      'batch_size = 16\ncheckpoint_every = 1\n')
    out = tmp_path / "run"
    status, _, _ = _run(["train", "--config", str(config), "--out", str(out), "--quiet",
                         "--device", "cpu"], capsys)
    assert status == 0
    saved = json.loads((out / "config.json").read_text())
    assert saved["steps"] == 2 and saved["hidden"] == 8 and saved["name"] == "mlp-ring8"


def test_info_names_devices(capsys):
    status, stdout, _ = _run(["info"], capsys)
    assert status == 0 and "devices:" in stdout and "numpy" in stdout
    # the thread settings, which decide most of the cpu device's speed
    threads = [line for line in stdout.splitlines() if line.startswith("threads: ")]
    assert len(threads) == 1 and "BLAS " in threads[0] and "Numba " in threads[0]
    assert "cpu device products on " in threads[0]


def test_console_entry_point_runs_as_a_module():
    result = subprocess.run([sys.executable, "-m", "minigan.cli", "train", "--recipe", "x"],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
