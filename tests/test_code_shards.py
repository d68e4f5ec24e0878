"""CodeShards: codes written in shards, checked by hash, recoded when damaged or stale, streamed back."""

import os

import numpy as np
import pytest

from vqgen.data import ImageSet, ImageStream, epoch_batches
from vqgen.runs import code_shards
from vqgen.runs.code_shards import CodeShards


class CountingCoder:
    """Stands in for a VQVAE: the code of an image is its first pixel * 255; counts images coded."""

    def __init__(self):
        self.coded = 0

    def encode(self, images):
        self.coded += len(images)
        return np.rint(np.asarray(images)[:, :2, :2, 0] * 255).astype(np.int32)  # (b, 2, 2)


@pytest.fixture
def small_shards(monkeypatch):
    monkeypatch.setattr(code_shards, "SHARD_SIZE", 8)
    monkeypatch.setattr(code_shards, "CODING_BATCH", 4)


def streams(count=20):
    """Train/validation streams whose image i has every pixel i and label i % 3."""
    pixels = np.repeat(np.arange(count, dtype=np.uint8), 16).reshape(count, 4, 4, 1)
    images = ImageSet(pixels, np.arange(count) % 3, 3, "indexed")
    train = ImageSet(images.images[:17], images.labels[:17], 3, "indexed")
    validation = ImageSet(images.images[17:], images.labels[17:], 3, "indexed")
    return {"train": ImageStream.from_image_set(train), "validation": ImageStream.from_image_set(validation)}


def build(folder, coder, model_file):
    return CodeShards.build_or_open(folder, coder, model_file, streams(), verbose=0)


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "vqvae.keras"
    path.write_bytes(b"model one")
    return str(path)


def test_codes_are_written_in_shards_and_read_back(tmp_path, small_shards, model_file):
    folder = str(tmp_path / "codes")
    shards = build(folder, CountingCoder(), model_file)
    assert sorted(os.listdir(os.path.join(folder, "train"))) == [
        f"{index:05d}{suffix}" for index in range(3) for suffix in (".labels.npy", ".npy")
    ]
    codes, labels = shards.arrays("train")
    np.testing.assert_array_equal(codes[:, 0, 0], np.arange(17))
    np.testing.assert_array_equal(labels, np.arange(17) % 3)
    assert shards.count("validation") == 3


def test_a_second_open_codes_nothing_and_a_damaged_shard_alone_is_recoded(tmp_path, small_shards, model_file):
    folder = str(tmp_path / "codes")
    first = build(folder, CountingCoder(), model_file).arrays("train")
    coder = CountingCoder()
    build(folder, coder, model_file)
    assert coder.coded == 0  # intact shards, same model: nothing to do
    with open(os.path.join(folder, "train", "00001.npy"), "r+b") as stream:
        stream.seek(-4, os.SEEK_END)
        stream.write(b"\xff\xff\xff\x7f")  # a changed code: the file still loads, its hash differs
    os.remove(os.path.join(folder, "validation", "00000.labels.npy"))
    coder = CountingCoder()
    rebuilt = build(folder, coder, model_file).arrays("train")
    assert coder.coded == 8 + 3  # train shard 1 and the validation shard only
    for before, after in zip(first, rebuilt):
        np.testing.assert_array_equal(after, before)


def test_codes_of_another_vqvae_file_are_stale_and_recoded(tmp_path, small_shards, model_file, capsys):
    folder = str(tmp_path / "codes")
    build(folder, CountingCoder(), model_file)
    with open(model_file, "wb") as stream:
        stream.write(b"model two")  # retrained: another vqvae.keras
    coder = CountingCoder()
    build(folder, coder, model_file)
    assert coder.coded == 20 and "coded by another vqvae.keras" in capsys.readouterr().out
    assert CodeShards.open(folder).manifest["vqvae_sha256"] == code_shards.file_hash(model_file)


def test_epoch_batches_from_shards_equal_the_in_memory_order_and_resume(tmp_path, small_shards, model_file):
    shards = build(str(tmp_path / "codes"), CountingCoder(), model_file)
    codes, labels = shards.arrays("train")

    def pairs(first_epoch):
        data, steps = shards.epoch_batches(
            "train", 5, 3, first_epoch, 3, lambda codes, labels: (codes, labels)
        )
        return [(codes.numpy(), labels.numpy()) for codes, labels in data], steps

    served, steps = pairs(0)
    expected, expected_steps = epoch_batches((codes, labels), 5, 3, 0, 3)
    assert steps == expected_steps == 4
    for (got_codes, got_labels), (want_codes, want_labels) in zip(served, expected):
        np.testing.assert_array_equal(got_codes, want_codes)
        np.testing.assert_array_equal(got_labels, want_labels)
    resumed, _ = pairs(2)  # epoch 2 alone: the same batches as in the uninterrupted run
    for (got, _), (want, _) in zip(resumed, served[2 * steps :]):
        np.testing.assert_array_equal(got, want)
    in_order = shards.batches("validation", 2, lambda codes, labels: codes)
    assert np.concatenate([batch.numpy() for batch in in_order])[:, 0, 0].tolist() == [17, 18, 19]
