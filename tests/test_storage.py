"""Paths on TensorFlow's file systems, tested on its in-memory `ram://` one: a `ram://` image folder trains
and is coded by `vqgen encode --out ram://...`, a `ram://` `.npy` reads back, a header is read without the
pixels, `vqgen export --out ram://...` loads and encodes as the model does, a `--run ram://...` is refused."""

import io
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import vqgen.data.image_header as image_header
from vqgen.data import load_images, stream_images
from vqgen.data.image_header import read_image_header
from vqgen.storage import is_remote, publish_folder

FOLDER = "ram://storage-digits"


def png_bytes(pixels):
    stream = io.BytesIO()
    Image.fromarray(pixels).save(stream, "PNG")
    return stream.getvalue()


@pytest.fixture(scope="module")
def ram_folder(tiny_digits):
    """48 of the tiny digits as PNGs in `ram://` class sub-folders; returns `(folder, images, labels)` in
    the folder's order (class by class, files sorted)."""
    digits = load_images(tiny_digits)
    images, labels = digits.images[:48], digits.labels[:48]
    order = np.argsort(labels, kind="stable")
    for row in order:
        path = f"{FOLDER}/{labels[row]}/{row:03d}.png"
        tf.io.gfile.makedirs(os.path.dirname(path))
        with tf.io.gfile.GFile(path, "wb") as stream:
            stream.write(png_bytes(images[row, ..., 0]))
    classes = np.unique(labels)
    return FOLDER, images[order], np.searchsorted(classes, labels[order])


def test_a_ram_folder_and_a_ram_npy_read_back_as_written(ram_folder):
    folder, images, labels = ram_folder
    read = stream_images(folder, verbose=0).to_image_set()
    np.testing.assert_array_equal(read.images, images)
    np.testing.assert_array_equal(read.labels, labels)
    np.testing.assert_array_equal(load_images(folder).images, images)  # the in-memory folder reader too
    with tf.io.gfile.GFile("ram://storage-arrays/digits.npy", "wb") as stream:
        np.save(stream, images)
    np.testing.assert_array_equal(
        stream_images("ram://storage-arrays/digits.npy").to_image_set().images, images
    )


def test_a_remote_header_is_read_without_the_pixels(monkeypatch):
    pixels = np.random.default_rng(0).integers(0, 256, (600, 500), dtype=np.uint8)
    data = png_bytes(pixels)
    with tf.io.gfile.GFile("ram://storage-header/noise.png", "wb") as stream:
        stream.write(data)
    read = []

    class CountingFile(tf.io.gfile.GFile):
        def read(self, n=-1):
            chunk = super().read(n)
            read.append(len(chunk))
            return chunk

    monkeypatch.setattr(image_header, "open_file", lambda path: CountingFile(path, "rb"))
    header = read_image_header("ram://storage-header/noise.png", "noise.png", 10**6)
    assert (header.height, header.width, header.mode) == (600, 500, "L")
    assert len(data) > 200_000 and sum(read) < 4096, (len(data), sum(read))
    with pytest.raises(ValueError, match="noise.png' is 600x500 = 300,000 pixels, above the limit"):
        read_image_header("ram://storage-header/noise.png", "noise.png", 1000)
    with pytest.raises(ValueError, match="cannot read 'gone.png'"):
        read_image_header("ram://storage-header/gone.png", "gone.png", 1000)


def test_a_ram_folder_trains(tmp_path, ram_folder, run_cli, tiny_train_args):
    run = tmp_path / "run"
    code, _, stderr = run_cli(["train", "--run", run, "--data", ram_folder[0], *tiny_train_args])
    assert code == 0, stderr
    config = json.loads((run / "config.json").read_text())
    assert config["data"]["num_train"] + config["data"]["num_validation"] == 48


def test_encode_writes_readable_codes_to_ram(tiny_run, ram_folder, run_cli):
    folder, images, labels = ram_folder
    out = "ram://storage-codes/digits"
    code, stdout, stderr = run_cli(["encode", "--run", tiny_run, "--data", folder, "--out", out, "--quiet"])
    assert code == 0, stderr
    with tf.io.gfile.GFile(f"{out}/manifest.json") as stream:
        manifest = json.load(stream)
    spec = {
        "codes": tf.io.VarLenFeature(tf.int64),
        "label": tf.io.FixedLenFeature([], tf.int64),
        "index": tf.io.FixedLenFeature([], tf.int64),
    }
    names = [f"{out}/{name}" for shard in manifest["shards"] for name in shard["files"]]
    records = [tf.io.parse_single_example(r, spec) for r in tf.data.TFRecordDataset(names)]
    vqvae = keras.saving.load_model(os.path.join(tiny_run, "vqvae.keras"))
    expected = np.asarray(vqvae.encode(images.astype(np.float32) / 255.0))
    codes = np.stack([tf.sparse.to_dense(r["codes"]).numpy() for r in records])
    np.testing.assert_array_equal(codes, expected.reshape(len(images), -1))
    np.testing.assert_array_equal([int(r["label"]) for r in records], labels)
    assert [int(r["index"]) for r in records] == list(range(len(images)))
    assert not [name for name in tf.io.gfile.listdir(out) if name.endswith(".tmp")]


def test_export_writes_a_loadable_savedmodel_to_ram_and_refuses_to_overwrite(tiny_run, tiny_digits, run_cli):
    out = "ram://storage-export/digits"
    code, _, stderr = run_cli(["export", "--run", tiny_run, "--out", out])
    assert code == 0, stderr
    assert tf.io.gfile.listdir("ram://storage-export") == ["digits"]  # no temporary left beside it
    loaded = tf.saved_model.load(out)
    images = load_images(tiny_digits).images[:8].astype(np.float32) / 255.0
    vqvae = keras.saving.load_model(os.path.join(tiny_run, "vqvae.keras"))
    np.testing.assert_array_equal(
        loaded.signatures["encode"](images=tf.constant(images))["codes"].numpy(),
        np.asarray(vqvae.encode(images)),
    )
    code, _, stderr = run_cli(["export", "--run", tiny_run, "--out", out])
    assert code == 2 and len(stderr.strip().splitlines()) == 1 and "already exists" in stderr


@pytest.mark.parametrize("command", ["train", "export"])
def test_a_remote_run_folder_is_refused_in_one_line(command, run_cli, tiny_run):
    args = ["--out", "ram://storage-refused/out"] if command == "export" else []
    code, _, stderr = run_cli([command, "--run", "ram://storage-refused/run", *args])
    lines = stderr.strip().splitlines()
    assert code == 2 and len(lines) == 1, stderr
    assert "run folders must be local" in lines[0] and "ram://storage-refused/run" in lines[0]
    assert not tf.io.gfile.exists("ram://storage-refused") and not os.path.exists("ram:")
    assert is_remote("gs://bucket/x") and not is_remote(os.path.join("runs", "gs:", "x"))


def test_a_file_system_tensorflow_lacks_is_named_in_one_line(tmp_path, run_cli):
    code, _, stderr = run_cli(["train", "--run", tmp_path / "run", "--data", "nofs://bucket/images"])
    lines = stderr.strip().splitlines()
    assert code == 2 and len(lines) == 1, stderr
    assert "'nofs' not implemented" in lines[0] and "plugin" in lines[0]


def test_a_remote_folder_moves_in_file_by_file_with_its_completion_file_last(monkeypatch):
    staged, target = "ram://storage-publish/.export.0a1b2c3d.tmp", "ram://storage-publish/export"
    for name in ("saved_model.pb", "variables/variables.index", "assets/config.json", "fingerprint.pb"):
        tf.io.gfile.makedirs(os.path.dirname(f"{staged}/{name}"))
        with tf.io.gfile.GFile(f"{staged}/{name}", "wb") as stream:
            stream.write(name.encode())
    moved = []
    rename = tf.io.gfile.rename
    monkeypatch.setattr(
        tf.io.gfile, "rename", lambda a, b, overwrite: moved.append(b) or rename(a, b, overwrite)
    )
    publish_folder(staged, target, "saved_model.pb")
    assert len(moved) == 4 and moved[-1] == f"{target}/saved_model.pb"
    assert tf.io.gfile.listdir("ram://storage-publish") == ["export"]
    with tf.io.gfile.GFile(f"{target}/variables/variables.index", "rb") as stream:
        assert stream.read() == b"variables/variables.index"
