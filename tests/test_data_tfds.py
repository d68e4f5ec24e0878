"""load_images("tfds:...") offline: tfds.testing.mock_data stands in for the real downloads."""

import json

import numpy as np
import pytest
import tensorflow_datasets as tfds

from vqgen.data import load_images


@pytest.mark.parametrize("name, shape", [("mnist", (28, 28, 1)), ("cifar10", (32, 32, 3))])
def test_mocked_tfds_dataset_matches_what_tfds_yields(tmp_path, name, shape):
    with tfds.testing.mock_data(num_examples=6):
        loaded = load_images(f"tfds:{name}", data_dir=str(tmp_path), split="test")
        reference = list(tfds.as_numpy(tfds.load(name, split="test", data_dir=str(tmp_path))))
    assert loaded.name == f"tfds:{name}" and loaded.num_classes == 10
    assert loaded.images.shape == (6,) + shape and loaded.images.dtype == np.uint8
    np.testing.assert_array_equal(loaded.images, np.stack([ex["image"] for ex in reference]))
    np.testing.assert_array_equal(loaded.labels, [ex["label"] for ex in reference])


def test_unknown_split_is_reported_when_the_split_names_are_known(tmp_path):
    # Real metadata (here a minimal dataset_info.json) tells the mock which splits exist.
    version_dir = tmp_path / "mnist" / "3.0.1"
    version_dir.mkdir(parents=True)
    splits = [{"name": split, "shardLengths": ["4"]} for split in ("train", "test")]
    info = {"name": "mnist", "version": "3.0.1", "splits": splits}
    (version_dir / "dataset_info.json").write_text(json.dumps(info))
    with tfds.testing.mock_data(num_examples=4, data_dir=str(tmp_path)):
        assert len(load_images("tfds:mnist", data_dir=str(tmp_path), split="train")) == 4
        known = r"no split 'validation'; use one of \['test', 'train'\]"
        with pytest.raises(ValueError, match=known):
            load_images("tfds:mnist", data_dir=str(tmp_path), split="validation")


def test_download_failure_says_it_cannot_be_downloaded_here(tmp_path, monkeypatch):
    def fail_download(self, *args, **kwargs):
        raise ConnectionError("Temporary failure in name resolution\nsecond line")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", fail_download)
    with pytest.raises(ValueError, match="cannot be downloaded here.*local source") as error:
        load_images("tfds:mnist", data_dir=str(tmp_path))
    assert "\n" not in str(error.value)
    assert "ConnectionError: Temporary failure in name resolution" in str(error.value)


def test_unknown_or_unsuitable_tfds_datasets_are_reported(tmp_path):
    with pytest.raises(ValueError, match="no dataset named 'no_such_dataset_xyz'"):
        load_images("tfds:no_such_dataset_xyz", data_dir=str(tmp_path))
    with pytest.raises(ValueError, match="cannot build TFDS dataset 'mnist:9.9.9'"):
        load_images("tfds:mnist:9.9.9", data_dir=str(tmp_path))
    with pytest.raises(ValueError, match="no fixed-size 'image' feature"):
        load_images("tfds:oxford_flowers102", data_dir=str(tmp_path))  # images vary in size
