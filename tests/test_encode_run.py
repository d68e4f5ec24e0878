"""`vqgen encode`: the shards hold what `VQVAE.encode` gives on the same images, with labels and source
positions; an existing output is refused; an interrupted encoding resumes to the same files."""

import hashlib
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import vqgen.runs.encode_run as encode_module
from vqgen.data import load_images
from vqgen.runs.encode_run import CODES_FEATURES, encode_run

SHARD_SIZE = 64  # 160 digits: shards of 64, 64 and 32


@pytest.fixture(scope="module")
def expected(tiny_run, tiny_digits):
    """`(codes, labels, manifest facts)` computed directly from the run's model and the digits."""
    vqvae = keras.saving.load_model(os.path.join(tiny_run, "vqvae.keras"))
    digits = load_images(tiny_digits)
    with open(os.path.join(tiny_run, "vqvae.keras"), "rb") as stream:
        digest = hashlib.sha256(stream.read()).hexdigest()
    return vqvae.encode(digits.images), digits.labels, digest


def read_tfrecords(out, names):
    """Codes, labels and indices of TFRecord files, parsed with a spec written here (independent)."""
    spec = {
        "codes": tf.io.VarLenFeature(tf.int64),
        "shape": tf.io.FixedLenFeature([2], tf.int64),
        "label": tf.io.FixedLenFeature([], tf.int64),
        "index": tf.io.FixedLenFeature([], tf.int64),
    }
    records = tf.data.TFRecordDataset([os.path.join(out, name) for name in names])
    codes, labels, indices = [], [], []
    for example in records.map(lambda record: tf.io.parse_single_example(record, spec)):
        codes.append(tf.sparse.to_dense(example["codes"]).numpy().reshape(example["shape"].numpy()))
        labels.append(int(example["label"]))
        indices.append(int(example["index"]))
    return np.stack(codes), np.array(labels), np.array(indices)


def shard_files(manifest):
    return [name for shard in manifest["shards"] for name in shard["files"]]


def test_tfrecord_shards_equal_vqvae_encode_with_labels_indices_and_manifest(
    tmp_path, tiny_run, tiny_digits, expected, run_cli
):
    codes, labels, digest = expected
    out = tmp_path / "codes"
    args = ["encode", "--run", tiny_run, "--data", tiny_digits, "--out", out, "--quiet"]
    code, stdout, stderr = run_cli([*args, "--shard-size", SHARD_SIZE, "--batch-size", 24])
    assert code == 0, stderr
    assert "160 codes in 3 shards" in stdout
    with open(out / "manifest.json") as stream:
        manifest = json.load(stream)
    assert manifest["stage1_sha256"] == digest
    assert (manifest["grid_shape"], manifest["num_embeddings"], manifest["code_depth"]) == ([7, 7], 16, 1)
    assert manifest["num_examples"] == 160 and [shard["count"] for shard in manifest["shards"]] == [
        64,
        64,
        32,
    ]
    assert sorted(os.listdir(out)) == sorted(
        ["manifest.json", *shard_files(manifest)]
    )  # no progress file left
    read_codes, read_labels, indices = read_tfrecords(out, shard_files(manifest))
    np.testing.assert_array_equal(read_codes, codes)
    np.testing.assert_array_equal(read_labels, labels)
    np.testing.assert_array_equal(indices, np.arange(160))
    # the documented feature spec parses them too
    first = next(iter(tf.data.TFRecordDataset(str(out / shard_files(manifest)[0]))))
    parsed = tf.io.parse_single_example(first, CODES_FEATURES)
    np.testing.assert_array_equal(tf.sparse.to_dense(parsed["codes"]).numpy(), codes[0].ravel())

    code, _, stderr = run_cli(args)  # the output exists: refused in one line
    assert code == 2
    assert len(stderr.strip().splitlines()) == 1 and "already exists" in stderr and "--overwrite" in stderr
    code, _, stderr = run_cli([*args, "--overwrite", "--format", "npy"])
    assert code == 0, stderr
    assert sorted(os.listdir(out)) == [
        "codes-00000-of-00001.npy",
        "index-00000-of-00001.npy",
        "labels-00000-of-00001.npy",
        "manifest.json",
    ]


def test_npy_shards_equal_vqvae_encode(tmp_path, tiny_run, tiny_digits, expected):
    codes, labels, _ = expected
    out = str(tmp_path / "npy")
    manifest = encode_run(tiny_run, tiny_digits, out, file_format="npy", shard_size=SHARD_SIZE, verbose=0)
    read = {kind: [] for kind in ("codes", "labels", "index")}
    for name in shard_files(manifest):
        read[name.split("-")[0]].append(np.load(os.path.join(out, name)))
    np.testing.assert_array_equal(np.concatenate(read["codes"]), codes)
    np.testing.assert_array_equal(np.concatenate(read["labels"]), labels)
    np.testing.assert_array_equal(np.concatenate(read["index"]), np.arange(160))


def folder_bytes(folder):
    return {name: (folder / name).read_bytes() for name in sorted(os.listdir(folder))}


@pytest.mark.parametrize("file_format", ["tfrecord", "npy"])
def test_an_interrupted_encoding_resumes_to_the_same_files(
    tmp_path, tiny_run, tiny_digits, monkeypatch, file_format
):
    settings = dict(file_format=file_format, shard_size=SHARD_SIZE, batch_size=32, verbose=0)
    encode_run(tiny_run, tiny_digits, str(tmp_path / "whole"), **settings)
    written, limit = [], {"shards": 2}
    write_shard = encode_module._write_shard

    def write_or_interrupt(out, name, *args):
        if len(written) == limit["shards"]:
            raise KeyboardInterrupt  # as Ctrl-C (or a kill) between two shards
        written.append(name)
        return write_shard(out, name, *args)

    monkeypatch.setattr(encode_module, "_write_shard", write_or_interrupt)
    with pytest.raises(KeyboardInterrupt):
        encode_run(tiny_run, tiny_digits, str(tmp_path / "resumed"), **settings)
    assert written == ["codes-00000-of-00003", "codes-00001-of-00003"]
    assert not (tmp_path / "resumed" / "manifest.json").exists()
    (tmp_path / "resumed" / ".codes-00002-of-00003.tfrecord.0123abcd.tmp").write_bytes(
        b"half"
    )  # as a kill leaves
    written.clear()
    encode_run(tiny_run, tiny_digits, str(tmp_path / "resumed"), **settings)
    assert written == ["codes-00002-of-00003"]  # only the missing shard is coded again
    assert folder_bytes(tmp_path / "resumed") == folder_bytes(tmp_path / "whole")


def test_writes_through_tf_io_gfile_to_ram(tiny_run, tiny_digits, expected):
    codes, labels, _ = expected
    out = "ram://encode_test/codes"
    manifest = encode_run(tiny_run, tiny_digits, out, shard_size=SHARD_SIZE, verbose=0)
    with tf.io.gfile.GFile(out + "/manifest.json") as stream:
        assert json.load(stream) == manifest
    paths = [f"{out}/{name}" for name in shard_files(manifest)]
    records = tf.data.TFRecordDataset(paths).map(
        lambda record: tf.io.parse_single_example(record, CODES_FEATURES)
    )
    read = np.stack([tf.sparse.to_dense(example["codes"]).numpy().reshape(7, 7) for example in records])
    np.testing.assert_array_equal(read, codes)
    with pytest.raises(FileExistsError, match="already exists"):
        encode_run(tiny_run, tiny_digits, out, verbose=0)
    tf.io.gfile.rmtree("ram://encode_test")


def test_a_streamed_image_folder_is_coded_in_file_order(tmp_path, tiny_run, tiny_digits, expected):
    from PIL import Image

    codes, _, _ = expected
    images = load_images(tiny_digits).images[:40]
    folder = tmp_path / "pngs"
    folder.mkdir()
    for index, image in enumerate(images):
        Image.fromarray(image[..., 0]).save(folder / f"{index:03d}.png")
    out = str(tmp_path / "folder_codes")
    manifest = encode_run(
        tiny_run, str(folder), out, file_format="npy", shard_size=16, batch_size=8, verbose=0
    )
    assert not manifest["has_labels"] and [shard["count"] for shard in manifest["shards"]] == [16, 16, 8]
    read = [np.load(os.path.join(out, name)) for name in shard_files(manifest) if name.startswith("codes")]
    np.testing.assert_array_equal(np.concatenate(read), codes[:40])
