"""The `minigan` command: what a user types, what comes back, and the exit status."""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

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
    wrong.write_text('steps = "lots"\n')
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


# ----------------------------------------------------------------------------- run folders


def _metric_steps(out):
    return [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_a_run_folder_in_use_is_refused_and_overwrite_starts_clean(tmp_path, capsys):
    out = tmp_path / "reuse"
    assert _run(["train", *TINY, "--set", "log_every=1", "--out", str(out)], capsys)[0] == 0
    before = sorted(p.name for p in (out / "checkpoints").iterdir())
    status, _, err = _run(["train", *TINY, "--steps", "2", "--seed", "7", "--out", str(out)],
                          capsys)
    assert status == 2 and "--out " in err and "is not empty (a run at step 4)" in err
    assert "--resume" in err and "--overwrite" in err
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == before
    assert _metric_steps(out) == [1, 2, 3, 4]

    status, _, _ = _run(["train", *TINY, "--steps", "2", "--seed", "7", "--set", "log_every=1",
                         "--out", str(out), "--overwrite"], capsys)
    assert status == 0
    assert json.loads((out / "config.json").read_text())["seed"] == 7
    assert _metric_steps(out) == [1, 2]
    assert sorted(p.name for p in (out / "checkpoints").glob("step_*")) == ["step_000002.npz"]
    assert os.readlink(out / "checkpoints" / "latest") == "step_000002.npz"


# a process that claims a run folder (as a training process does) until its stdin closes
_HOLD = ("import sys; from minigan.gan.run_folder import claim_run_folder; "
         "claim_run_folder(sys.argv[1]); print('held', flush=True); sys.stdin.read()")


def _held_by_another_process(folder):
    child = subprocess.Popen([sys.executable, "-c", _HOLD, str(folder)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "held"
    return child


def _let_go(child):
    child.stdin.close()
    assert child.wait(timeout=60) == 0


def test_a_run_folder_another_process_writes_is_refused_whatever_the_options(tmp_path, capsys):
    # two `minigan train --out X` started together both found X empty and wrote into it
    out = tmp_path / "run"
    child = _held_by_another_process(out)
    try:
        in_use = f"run folder {out} is in use: another minigan process (pid {child.pid})"
        status, _, err = _run(["train", *TINY, "--out", str(out)], capsys)
        assert status == 2 and in_use in err and err.count("\n") == 1
        assert not (out / "config.json").exists()
        (out / "config.json").write_text("{}")  # the other process's run, so far
        status, _, err = _run(["train", *TINY, "--out", str(out), "--overwrite"], capsys)
        assert status == 2 and in_use in err
        assert (out / "config.json").read_text() == "{}"  # --overwrite deleted nothing
        status, _, err = _run(["train", "--resume", str(out), "--quiet"], capsys)
        assert status == 2 and in_use in err
    finally:
        _let_go(child)
    (out / "config.json").unlink()
    assert _run(["train", *TINY, "--out", str(out)], capsys)[0] == 0  # free again
    assert _run(["train", "--resume", str(out), "--steps", "6", "--quiet"], capsys)[0] == 0
    child = _held_by_another_process(out)  # the command let go of the folder when it ended
    _let_go(child)


def test_plain_runs_started_together_take_folders_of_their_own(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = tmp_path / "runs" / "mlp-ring8"
    child = _held_by_another_process(first)  # a run just starting there: still empty
    try:
        status, stdout, _ = _run(["train", *TINY], capsys)
    finally:
        _let_go(child)
    assert status == 0 and "-> runs/mlp-ring8-2" in stdout
    assert (tmp_path / "runs" / "mlp-ring8-2" / "eval.json").exists()
    assert not (first / "config.json").exists()


def test_a_command_that_fails_before_writing_leaves_no_folder(tmp_path, capsys, monkeypatch):
    bad = ["train", "--data", str(tmp_path / "missing"), "--quiet"]
    status, _, err = _run([*bad, "--out", str(tmp_path / "new" / "run")], capsys)
    assert status == 2 and "neither a built-in dataset" in err
    assert not (tmp_path / "new").exists()  # the folders the claim made are gone
    mine = tmp_path / "mine"
    mine.mkdir()
    assert _run([*bad, "--out", str(mine)], capsys)[0] == 2
    assert mine.is_dir() and list(mine.iterdir()) == []  # the user's folder, as it was
    monkeypatch.chdir(tmp_path)
    assert _run(bad, capsys)[0] == 2
    assert not (tmp_path / "runs").exists()


def test_claims_nest_within_a_process(tmp_path):
    from minigan.gan.run_folder import claim_run_folder, release_run_folder

    def another_process_can_claim(folder) -> bool:
        code = ("import sys; from minigan.gan.run_folder import claim_run_folder; "
                "claim_run_folder(sys.argv[1])")
        return subprocess.run([sys.executable, "-c", code, str(folder)],
                              capture_output=True).returncode == 0

    folder = tmp_path / "run"
    claim_run_folder(folder)
    claim_run_folder(folder)
    release_run_folder(folder)
    assert not another_process_can_claim(folder)
    release_run_folder(folder)
    assert another_process_can_claim(folder)


def test_overwrite_never_deletes_a_folder_that_is_not_a_run(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    status, _, err = _run(["train", *TINY, "--out", str(tmp_path), "--overwrite"], capsys)
    assert status == 2 and "holds no minigan run" in err
    assert (tmp_path / "notes.txt").read_text() == "mine"
    status, _, err = _run(["train", *TINY, "--out", str(tmp_path / "notes.txt")], capsys)
    assert status == 2 and "is a file" in err


def test_sample_refuses_a_run_whose_latest_dangles(tmp_path, capsys):
    out = tmp_path / "run"
    assert _run(["train", *TINY, "--out", str(out)], capsys)[0] == 0
    (out / "checkpoints" / "step_000004.npz").unlink()
    status, _, err = _run(["sample", "--run", str(out), "--out", str(tmp_path / "s.png")],
                          capsys)
    assert status == 2 and "points at step_000004.npz, which does not exist" in err
    assert not (tmp_path / "s.png").exists()


@pytest.mark.parametrize("option", [
    ["--recipe", "mlp-grid25"], ["--data", "grid25"], ["--batch-size", "8"], ["--seed", "3"],
    ["--set", "hidden=4"], ["--config", "c.toml"], ["--out", "elsewhere"],
    ["--objective", "hinge"], ["--overwrite"],
])
def test_resume_refuses_options_it_cannot_honour(tmp_path, capsys, option):
    out = tmp_path / "run"
    assert _run(["train", *TINY, "--out", str(out)], capsys)[0] == 0
    status, _, err = _run(["train", "--resume", str(out), *option], capsys)
    assert status == 2 and f"cannot honour {option[0]}" in err
    assert len(err.strip().splitlines()) == 1


def test_resume_steps_is_a_total_and_may_not_go_back(tmp_path, capsys):
    out = tmp_path / "run"
    assert _run(["train", *TINY, "--out", str(out)], capsys)[0] == 0
    status, _, err = _run(["train", "--resume", str(out), "--steps", "3", "--quiet"], capsys)
    assert status == 2 and "at step 4; steps is the total to train to" in err and "got 3" in err


def test_resume_honours_output_intervals(tmp_path, capsys):
    out = tmp_path / "run"
    assert _run(["train", *TINY, "--out", str(out)], capsys)[0] == 0
    status, _, _ = _run(["train", "--resume", str(out), "--steps", "7", "--checkpoint-every",
                         "7", "--quiet"], capsys)
    assert status == 0
    assert json.loads((out / "config.json").read_text())["checkpoint_every"] == 7
    assert os.readlink(out / "checkpoints" / "latest") == "step_000007.npz"


def _lines(path):
    return len(path.read_text().splitlines()) if path.exists() else 0


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_writes_a_checkpoint_and_resume_continues_from_it(tmp_path, capsys, signum,
                                                                   status):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "minigan", "train", "--recipe", "mlp-ring8", "--steps",
               "1000000", "--batch-size", "16", "--set", "hidden=8", "--set", "layers=1",
               "--set", "log_every=1", "--checkpoint-every", "1000000", "--sample-every",
               "1000000", "--device", "numpy", "--quiet", "--out", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    deadline = time.monotonic() + 120
    while _lines(out / "metrics.jsonl") < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signum)
    _, err = process.communicate(timeout=120)
    assert process.returncode == status, err
    assert "Traceback" not in err
    step = int(re.search(r"continues from step (\d+)", err).group(1))
    assert step >= 3 and f"stopped by {signal.Signals(signum).name} after step {step}" in err
    assert os.readlink(out / "checkpoints" / "latest") == f"step_{step:06d}.npz"
    assert _metric_steps(out) == list(range(1, step + 1))

    code, stdout, _ = _run(["train", "--resume", str(out), "--steps", str(step + 2),
                            "--quiet", "--device", "numpy"], capsys)
    assert code == 0 and f"at step {step} of {step + 2}" in stdout
    assert _metric_steps(out) == list(range(1, step + 3))


def test_config_file_has_one_layout_and_refuses_the_rest_by_name(tmp_path, capsys):
    table = tmp_path / "table.toml"
    table.write_text('recipe = "mlp-ring8"\n[train]\nbatch_size = 32\n')
    status, _, err = _run(["train", "--config", str(table)], capsys)
    assert status == 2 and "[train]" in err and "top level" in err
    unknown = tmp_path / "unknown.toml"
    unknown.write_text('recipe = "mlp-ring8"\nbatchsize = 32\nlr = 1\n')
    status, _, err = _run(["train", "--config", str(unknown)], capsys)
    assert status == 2 and "unknown keys 'batchsize', 'lr'" in err
    as_json = tmp_path / "c.json"
    as_json.write_text('{"recipe": "mlp-ring8", "train": {"steps": 2}}')
    status, _, err = _run(["train", "--config", str(as_json)], capsys)
    assert status == 2 and "[train]" in err


def test_command_line_recipe_wins_over_the_config_files(tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text('recipe = "mlp-grid25"\nsteps = 1\nhidden = 8\nlayers = 1\n'
                      'batch_size = 16\n')
    out = tmp_path / "run"
    status, _, _ = _run(["train", "--config", str(config), "--recipe", "mlp-ring8", "--out",
                         str(out), "--quiet", "--device", "cpu"], capsys)
    assert status == 0 and json.loads((out / "config.json").read_text())["data"] == "ring8"


# ----------------------------------------------------------------------------- bad inputs


@pytest.fixture(scope="module")
def user_data(tmp_path_factory):
    """Data a user brings: a folder of 32x32 RGB images, one of mixed sizes, points and
    1-D data in .npz, points and images in .npy."""
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    (root / "rgb32").mkdir()
    (root / "mixed").mkdir()
    for i in range(8):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(
            root / "rgb32" / f"{i}.png")
        side = 20 if i % 2 else 24
        Image.fromarray(rng.integers(0, 255, (side, side + 3, 3), dtype=np.uint8)).save(
            root / "mixed" / f"{i}.png")
    np.savez(root / "points.npz", x=rng.standard_normal((64, 2)))
    np.savez(root / "flat.npz", x=rng.standard_normal(64))
    np.save(root / "points.npy", rng.standard_normal((64, 2)).astype(np.float32))
    np.save(root / "digits.npy", np.tanh(rng.standard_normal((16, 1, 28, 28))).astype(np.float32))
    (root / "a_file").write_text("not a folder")
    return root


SMALL_DCGAN = ["--steps", "1", "--batch-size", "4", "--set", "n_samples=4", "--quiet",
               "--device", "numpy"]


@pytest.mark.parametrize("argv, message", [
    (["train", "--recipe", "mlp-ring8", "--batch-size", "30000"],
     "batch_size 30000 is larger than the data 'ring8' (20000 samples): use a batch size of "
     "at most 20000"),
    (["train", "--data", "{d}/rgb32", *SMALL_DCGAN],
     "needs 28x28 images and the data '{d}/rgb32' holds 3x32x32 images: resize them with "
     "--set image_size=28, or use --recipe dcgan-64"),
    (["train", "--data", "{d}/points.npz", *SMALL_DCGAN],
     "generates images, but the data '{d}/points.npz' holds samples of shape (2,); for 2-D "
     "points use an mlp recipe"),
    (["train", "--recipe", "mlp-ring8", "--data", "{d}/flat.npz", "--quiet"],
     "flat: data of shape (64,) is neither (N, 2) points nor images"),
    (["train", "--recipe", "mlp-ring8", "--out", "{d}/a_file"], "is a file"),
    (["train", "--recipe", "mlp-ring8", "--set", "image_size=32", "--quiet"],
     "the data 'ring8' holds 2-D points"),
    (["train", "--set", "betas=a,b"], "--set betas expects two numbers"),
    (["sample", "--run", "r", "--n", "-5", "--out", "x.png"],
     "--n: expected a positive whole number, got '-5'"),
    (["sample", "--run", "r", "--n", "0", "--out", "x.png"],
     "--n: expected a positive whole number, got '0'"),
    (["eval", "--run", "r", "--n", "0"], "--n: expected a positive whole number, got '0'"),
    (["sample", "--run", "r", "--out", "x.gif"],
     "--out x.gif: expected a picture (.png, .jpg, .jpeg) or raw samples (.npy)"),
    (["sample", "--run", "r", "--checkpoint", "c.npz", "--out", "x.png"],
     "--checkpoint: not allowed with argument --run"),
    (["eval", "--run", "r", "--checkpoint", "c.npz"], "not allowed with argument --run"),
])
def test_bad_data_and_outputs_are_one_line_and_status_2(argv, message, user_data, capsys):
    argv = [a.replace("{d}", str(user_data)) for a in argv]
    status, _, err = _run(argv, capsys)
    assert status == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("minigan: error:"), err
    assert message.replace("{d}", str(user_data)) in lines[0]
    assert "drop_last" not in lines[0]  # advice the command line cannot follow


def test_dcgan_64_trains_out_of_the_box(tmp_path, capsys):
    out = tmp_path / "run"
    status, _, err = _run(["train", "--recipe", "dcgan-64", *SMALL_DCGAN, "--device", "cpu",
                           "--out", str(out)], capsys)  # cpu: numpy's convolutions are slow
    assert status == 0, err  # MNIST resized to 64x64, as pytorch/examples' DCGAN does
    assert _run(["sample", "--run", str(out), "--n", "2", "--out", str(tmp_path / "s.npy"),
                 "--device", "cpu"], capsys)[0] == 0
    assert np.load(tmp_path / "s.npy").shape == (2, 1, 64, 64)


def test_image_size_resizes_a_folder_of_mixed_sizes_for_any_gan(tmp_path, user_data, capsys):
    out = tmp_path / "run"
    status, _, err = _run(["train", "--recipe", "dcgan-64", "--data", str(user_data / "mixed"),
                           "--set", "image_size=16", *SMALL_DCGAN, "--out", str(out)], capsys)
    assert status == 0, err
    assert _run(["sample", "--run", str(out), "--n", "2", "--out", str(tmp_path / "s.npy"),
                 "--device", "numpy"], capsys)[0] == 0
    assert np.load(tmp_path / "s.npy").shape == (2, 3, 16, 16)


def test_default_recipe_is_conditional_on_the_bundled_digits_and_plain_with_data(
        tmp_path, user_data, capsys):
    # the bundled digits carry labels, so the default draws the digit asked for; data a user
    # brings may have none, so with --data the default is the unconditional DCGAN
    small = [*SMALL_DCGAN, "--set", "ngf=8", "--set", "ndf=8"]
    for extra, expected in (([], "cdcgan-mnist"),
                            (["--data", str(user_data / "digits.npy")], "dcgan-mnist")):
        out = tmp_path / expected
        status, _, err = _run(["train", *extra, *small, "--out", str(out)], capsys)
        assert status == 0, err
        config = json.loads((out / "config.json").read_text())
        assert config["name"] == expected
        assert (config["n_classes"] == 10) == (expected == "cdcgan-mnist")


@pytest.mark.parametrize("name, recipe_name, shape", [
    ("points.npy", "mlp-ring8", (3, 2)), ("digits.npy", "dcgan-mnist", (3, 1, 28, 28))])
def test_npy_data_is_read(tmp_path, user_data, capsys, name, recipe_name, shape):
    out = tmp_path / "run"
    status, _, err = _run(["train", "--recipe", recipe_name, "--data", str(user_data / name),
                           *SMALL_DCGAN, "--set", "ngf=8" if "dcgan" in recipe_name else
                           "hidden=8", "--out", str(out)], capsys)
    assert status == 0, err
    assert _run(["sample", "--run", str(out), "--n", "3", "--out", str(tmp_path / "s.npy"),
                 "--device", "numpy"], capsys)[0] == 0
    assert np.load(tmp_path / "s.npy").shape == shape


# ----------------------------------------------------------------------------- honest outputs


def _strict_json(text):
    def refuse(constant):
        raise AssertionError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_scores_that_are_not_finite_become_null_with_the_reason():
    from minigan.cli import _scores_json

    scores = _strict_json(_scores_json({"reverse_kl": float("inf"), "modes_captured": 0,
                                        "other": float("nan")}))
    assert scores["reverse_kl"] is None and scores["other"] is None
    assert "no generated sample lies within 3 std" in scores["null_because"]["reverse_kl"]
    assert set(scores["null_because"]) == {"reverse_kl", "other"}


def test_eval_and_end_of_training_give_one_score_and_say_what_it_is(tmp_path, capsys):
    out = tmp_path / "run"
    assert _run(["train", *TINY, "--out", str(out)], capsys)[0] == 0
    at_end = _strict_json((out / "eval.json").read_text())
    assert at_end["n_samples"] == 2500 and "mode coverage" in at_end["metric"]
    status, stdout, _ = _run(["eval", "--run", str(out)], capsys)
    assert status == 0 and _strict_json(stdout) == at_end


def test_eval_says_why_data_is_not_scored(tmp_path, user_data, capsys):
    rng = np.random.default_rng(1)  # 28x28 labelled images that are not digits
    np.savez(tmp_path / "noise.npz", x=rng.integers(0, 255, (32, 28, 28), dtype=np.uint8),
             y=np.arange(32) % 10)
    for data, reason in ((str(tmp_path / "noise.npz"), "is not digits as MNIST draws them"),
                         (str(user_data / "digits.npy"), "has no labels"),
                         (str(user_data / "points.npy"), "needs a Gaussian mixture")):
        out = tmp_path / f"run-{Path(data).name}"
        recipe_name = "mlp-ring8" if "points" in data else "dcgan-mnist"
        status, _, err = _run(["train", "--recipe", recipe_name, "--data", data, *SMALL_DCGAN,
                               "--set", "hidden=8", "--set", "ngf=8", "--out", str(out)], capsys)
        assert status == 0, err
        status, stdout, _ = _run(["eval", "--run", str(out), "--device", "numpy"], capsys)
        scores = _strict_json(stdout)
        assert status == 0 and set(scores) == {"not_scored"} and reason in scores["not_scored"]
        assert _strict_json((out / "eval.json").read_text()) == scores


def test_digit_scores_say_why_they_apply_and_need_two_samples(tmp_path, capsys):
    out = tmp_path / "run"
    assert _run(["train", "--recipe", "dcgan-mnist", *SMALL_DCGAN, "--set", "ngf=8",
                 "--set", "ndf=8", "--out", str(out)], capsys)[0] == 0
    scores = _strict_json((out / "eval.json").read_text())
    assert scores["n_samples"] == 2000 and "bundled MNIST subset" in scores["metric"]
    status, _, err = _run(["eval", "--run", str(out), "--n", "1", "--device", "numpy"], capsys)
    assert status == 2 and "at least 2 samples" in err and len(err.strip().splitlines()) == 1


def test_sample_writes_the_format_its_name_says(tmp_path, capsys):
    out = tmp_path / "run"
    assert _run(["train", *TINY, "--out", str(out)], capsys)[0] == 0
    for name, kind in (("s.jpg", "JPEG"), ("s.jpeg", "JPEG"), ("s.png", "PNG")):
        assert _run(["sample", "--run", str(out), "--out", str(tmp_path / name)], capsys)[0] == 0
        with Image.open(tmp_path / name) as picture:
            assert picture.format == kind


def test_every_option_has_help_and_its_default():
    from minigan.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in commands.choices.items():
        options = {s for a in sub._actions for s in a.option_strings}
        if name in ("sample", "eval", "train", "bench"):
            assert "--threads" in options, name
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            where = f"{name} {'/'.join(action.option_strings) or action.dest}"
            assert action.help, f"{where} has no help text"
            if action.option_strings and not action.required:
                assert "default" in action.help, f"{where} does not say its default"


def test_version_and_python_dash_m():
    for command in (["-m", "minigan", "--version"], ["-m", "minigan.cli", "--version"]):
        result = subprocess.run([sys.executable, *command], capture_output=True, text=True)
        assert result.returncode == 0 and re.fullmatch(r"minigan \d+\.\d+\.\d+\n",
                                                       result.stdout), result


def test_a_damaged_newest_checkpoint_names_the_others_to_resume_from(tmp_path, capsys):
    out = tmp_path / "run"
    assert _run(["train", *TINY, "--out", str(out)], capsys)[0] == 0  # checkpoints 2 and 4
    newest = out / "checkpoints" / "step_000004.npz"
    newest.write_bytes(newest.read_bytes()[:1000])  # cut short, as by a full disk elsewhere
    status, _, err = _run(["train", "--resume", str(out), "--steps", "6", "--quiet"], capsys)
    older = out / "checkpoints" / "step_000002.npz"
    assert status == 2 and "step_000004.npz is damaged or truncated" in err
    assert f"other checkpoints: step_000002.npz; continue from one with --resume {older}" in err
    status, stdout, _ = _run(["train", "--resume", str(older), "--steps", "6", "--quiet"],
                             capsys)
    assert status == 0 and "at step 2 of 6" in stdout
