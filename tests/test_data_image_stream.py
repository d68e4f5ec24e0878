"""ImageStream: hash split stable when files are added, exact resume, shards, in-memory sources unchanged."""

import os

import numpy as np
from PIL import Image

from vqgen.data import epoch_batches, load_images, split_images, stream_images
from vqgen.data.pipeline import pixels_to_float


def write_folder(folder, names):
    """One 4x4 gray PNG per name, every pixel the name's index (so served images identify files)."""
    for index, name in enumerate(names):
        path = os.path.join(folder, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        Image.fromarray(np.full((4, 4), index, np.uint8)).save(path)


def ids(dataset):
    """The first pixel * 255 of every image of every batch, as lists per batch."""
    return [np.rint(batch[:, 0, 0, 0].numpy() * 255).astype(int).tolist() for batch in dataset]


def validation_files(folder, seed=0):
    _, validation = stream_images(folder, verbose=0).split(0.25, seed=seed)
    return {validation._files[position].rsplit("/", 1)[-1] for position in validation.positions}


def test_split_keeps_every_file_on_its_side_when_files_are_added(tmp_path):
    folder = str(tmp_path / "images")
    write_folder(folder, [f"a/{index:03d}.png" for index in range(40)])
    before = validation_files(folder)
    assert 4 <= len(before) <= 18  # about a quarter of 40
    write_folder(folder, [f"a/{index:03d}.png" for index in range(40)] + [f"b/new{i}.png" for i in range(20)])
    after = validation_files(folder)
    old_names = {f"{index:03d}.png" for index in range(40)}
    assert after & old_names == before  # no old file changed side
    assert after - old_names  # and some new ones were held out
    assert validation_files(folder, seed=1) != before  # the seed matters


def test_resumed_epochs_see_the_same_batches_as_an_uninterrupted_run(tmp_path):
    folder = str(tmp_path / "images")
    write_folder(folder, [f"{index:02d}.png" for index in range(23)])
    stream = stream_images(folder, verbose=0)
    everything, steps = stream.epoch_batches(5, seed=7, first_epoch=0, epochs=3)
    uninterrupted = ids(everything)
    assert steps == 5 and len(uninterrupted) == 15
    for epoch in range(3):
        assert sorted(sum(uninterrupted[epoch * 5 : (epoch + 1) * 5], [])) == list(range(23))
    assert uninterrupted[:5] != uninterrupted[5:10]  # reshuffled every epoch
    resumed, _ = stream.epoch_batches(5, seed=7, first_epoch=2, epochs=3)
    assert ids(resumed) == uninterrupted[10:]


def test_in_memory_sources_keep_their_split_and_order():
    digits = load_images("digits")
    train, validation = stream_images("digits").split(0.1, seed=0)
    old_train, old_validation = split_images(digits, 0.1, seed=0)
    np.testing.assert_array_equal(validation.image_set.images, old_validation.images)
    np.testing.assert_array_equal(train.image_set.labels, old_train.labels)
    served, steps = train.epoch_batches(64, seed=0, first_epoch=1, epochs=2)
    old, old_steps = epoch_batches(old_train.images, 64, 0, 1, 2, transform=pixels_to_float)
    assert steps == old_steps
    for new_batch, old_batch in zip(served.take(3), old.take(3)):
        np.testing.assert_array_equal(new_batch.numpy(), old_batch.numpy())


def test_shards_are_disjoint_and_cover_the_stream(tmp_path):
    folder = str(tmp_path / "images")
    write_folder(folder, [f"{index:02d}.png" for index in range(11)])
    stream = stream_images(folder, verbose=0)
    shares = [sum(ids(stream.shard(2, index).batches(4)), []) for index in range(2)]
    assert not set(shares[0]) & set(shares[1])
    assert sorted(shares[0] + shares[1]) == list(range(11))
