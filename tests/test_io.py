"""Checkpoints, atomic writes, image grids and plots."""

import io
import os
import zipfile

import numpy as np
import pytest
from PIL import Image

from minigan.io import (
    CheckpointError,
    atomic_write,
    load_checkpoint,
    save_checkpoint,
    save_image_grid,
    save_loss_plot,
    save_points_plot,
)
from minigan.io.images import image_grid


def _state():
    rng = np.random.default_rng(0)
    return {
        "step": 7,
        "config": {"name": "x", "betas": [0.5, 0.999], "notes": []},
        "model": {"0.weight": rng.standard_normal((3, 2)).astype(np.float32),
                  "1.num_batches_tracked": np.array(5)},
        "optimizer": {"state": [{"step": 3, "exp_avg": np.ones(4)}], "lr": 1e-3},
        "random": {"bit_generator": "PCG64", "state": {"state": 2**100 + 3, "inc": 11}},
        "nothing": None,
    }


def test_checkpoint_round_trip_keeps_arrays_numbers_and_big_ints(tmp_path):
    path = tmp_path / "c.npz"
    save_checkpoint(path, _state())
    back = load_checkpoint(path)
    state = _state()
    np.testing.assert_array_equal(back["model"]["0.weight"], state["model"]["0.weight"])
    assert back["model"]["0.weight"].dtype == np.float32
    assert back["model"]["1.num_batches_tracked"] == 5
    np.testing.assert_array_equal(back["optimizer"]["state"][0]["exp_avg"], np.ones(4))
    assert back["random"]["state"]["state"] == 2**100 + 3  # PCG64 state is a 128-bit int
    assert back["config"] == state["config"] and back["nothing"] is None and back["step"] == 7


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.95])
def test_truncated_checkpoint_is_rejected_whole(tmp_path, keep):
    path = tmp_path / "c.npz"
    save_checkpoint(path, _state())
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(CheckpointError, match="damaged|truncated"):
        load_checkpoint(path)


def test_corrupted_array_bytes_fail_the_crc_check(tmp_path):
    path = tmp_path / "c.npz"
    save_checkpoint(path, {"w": np.arange(1000, dtype=np.float64)})
    data = bytearray(path.read_bytes())
    start = data.find(np.arange(1000, dtype=np.float64)[500:510].tobytes())
    assert start > 0
    data[start] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="damaged"):
        load_checkpoint(path)


def test_checkpoint_with_pickled_object_is_refused(tmp_path):
    path = tmp_path / "evil.npz"
    buffer = io.BytesIO()
    np.savez(buffer, __tree__=np.frombuffer(b'{"format": "minigan-checkpoint"}', np.uint8),
             __sha256__=np.frombuffer(b"0" * 64, np.uint8),
             a0=np.array([{"x": 1}], dtype=object))
    path.write_bytes(buffer.getvalue())
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


def test_a_foreign_zip_or_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.npz")
    other = tmp_path / "other.npz"
    np.savez(other, x=np.ones(3))
    with pytest.raises(CheckpointError, match="not a minigan checkpoint"):
        load_checkpoint(other)
    text = tmp_path / "text.npz"
    text.write_text("hello")
    with pytest.raises(CheckpointError):
        load_checkpoint(text)


def test_atomic_write_leaves_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")

    def failing(handle):
        handle.write(b"partial new content")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, failing)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["f.bin"]  # no temporary file left behind


def test_image_grid_layout_and_scaling():
    images = np.full((5, 1, 4, 3), -1.0, dtype=np.float32)
    images[4] = 1.0
    grid = image_grid(images, nrow=3, padding=1)
    assert grid.shape == (2 * 5 + 1, 3 * 4 + 1, 1)
    assert grid[1, 1, 0] == 0  # -1 maps to black
    assert grid[1 + 5, 1 + 4, 0] == 255  # the fifth image (row 1, col 1) is white
    with pytest.raises(ValueError, match=r"\(N, 1\|3, H, W\)"):
        image_grid(np.zeros((2, 2, 4, 4)))


def test_saved_pngs_are_readable(tmp_path):
    save_image_grid(np.zeros((4, 3, 8, 8)), tmp_path / "g.png")
    assert Image.open(tmp_path / "g.png").size == (2 * (2 * 10 + 2), 2 * (2 * 10 + 2))
    save_points_plot(np.random.default_rng(0).standard_normal((50, 2)), tmp_path / "p.png",
                     real=np.zeros((10, 2)))
    assert Image.open(tmp_path / "p.png").size == (480, 480)
    records = [{"step": i, "loss_d": 1.0 / (i + 1), "loss_g": float(i)} for i in range(30)]
    records.append({"step": 30, "loss_d": float("nan"), "loss_g": 1.0})
    save_loss_plot(records, tmp_path / "loss.png")
    picture = np.asarray(Image.open(tmp_path / "loss.png").convert("RGB"))
    assert (picture != 255).any(axis=2).sum() > 500  # lines were drawn
    assert zipfile.is_zipfile(tmp_path / "loss.png") is False


@pytest.mark.parametrize("umask, expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_write_gives_new_files_the_permissions_open_would(tmp_path, umask, expected):
    old = os.umask(umask)
    try:
        atomic_write(tmp_path / "new.txt", lambda f: f.write(b"x"))
        with open(tmp_path / "plain.txt", "wb") as handle:  # what an ordinary open() gives
            handle.write(b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "new.txt").stat().st_mode & 0o777 == expected
    assert (tmp_path / "plain.txt").stat().st_mode & 0o777 == expected


def test_atomic_write_keeps_an_existing_files_permissions(tmp_path):
    path = tmp_path / "kept.txt"
    path.write_bytes(b"old")
    path.chmod(0o640)
    atomic_write(path, lambda f: f.write(b"new"))
    assert path.read_bytes() == b"new" and path.stat().st_mode & 0o777 == 0o640


def test_loss_plot_has_a_panel_for_d_outputs_and_gradient_norms(tmp_path):
    records = [{"step": i, "loss_d": 1.0, "loss_g": 2.0 - i / 30, "d_real": 0.7, "d_fake": 0.3,
                "grad_norm_d": 1.5, "grad_norm_g": 3.0} for i in range(1, 31)]
    save_loss_plot(records, tmp_path / "all.png", score_label="mean D output")
    save_loss_plot([{k: r[k] for k in ("step", "loss_d", "loss_g")} for r in records],
                   tmp_path / "losses.png")
    with Image.open(tmp_path / "all.png") as all_panels, \
            Image.open(tmp_path / "losses.png") as one_panel:
        assert all_panels.height == 3 * one_panel.height
        picture = np.asarray(one_panel.convert("RGB"))
    # the y axis is labelled: ink in the leftmost strip, left of the tick values
    assert (picture[:, :20] < 128).any()


def test_tick_values_are_round_and_printed_without_float_noise():
    from minigan.io.plots import _tick_text, nice_ticks

    assert nice_ticks(1, 1200) == [250, 500, 750, 1000]
    ticks = nice_ticks(0.123, 0.987)
    assert [_tick_text(t, ticks) for t in ticks] == ["0.2", "0.4", "0.6", "0.8"]
    ticks = nice_ticks(-3.2, 7.9)
    assert [_tick_text(t, ticks) for t in ticks] == ["-2.5", "0.0", "2.5", "5.0", "7.5"]


def test_points_plot_has_a_legend_saying_which_colour_is_real(tmp_path):
    save_points_plot(np.full((5, 2), 10.0), tmp_path / "p.png", real=np.full((5, 2), -10.0))
    with Image.open(tmp_path / "p.png") as picture:
        # the legend's markers, top left: real (grey) first, then generated (blue)
        assert picture.getpixel((14, 15)) == (170, 170, 170)
        assert picture.getpixel((14, 33)) == (31, 90, 200)


def test_grid_columns_can_be_labelled(tmp_path):
    images = np.zeros((6, 1, 8, 8))
    save_image_grid(images, tmp_path / "plain.png", nrow=3)
    save_image_grid(images, tmp_path / "labelled.png", nrow=3, column_labels=["a", "b", "c"])
    with Image.open(tmp_path / "plain.png") as plain, \
            Image.open(tmp_path / "labelled.png") as labelled:
        assert labelled.width == plain.width and labelled.height > plain.height
        header = np.asarray(labelled)[: labelled.height - plain.height]
    assert (header < 128).any()  # the names were written


def test_pictures_take_their_format_from_the_file_name(tmp_path):
    save_image_grid(np.zeros((4, 3, 8, 8)), tmp_path / "g.jpg")
    with Image.open(tmp_path / "g.jpg") as picture:
        assert picture.format == "JPEG"
    with pytest.raises(ValueError, match="got '.gif'"):
        save_image_grid(np.zeros((4, 3, 8, 8)), tmp_path / "g.gif")
