"""The TFRecord source: shards written here with `tf.io.TFRecordWriter` (PNG bytes, int64 labels) read back
as the arrays that were encoded; the split follows each image, not the file list; epochs resume exactly;
workers get disjoint shares (by file when there are enough files); a `ram://` glob trains."""

import os

import numpy as np
import pytest
import tensorflow as tf

from vqgen.data import stream_images
from vqgen.data.tfrecord_source import is_tfrecord_source

PER_SHARD = 12


def example(pixels, label=None, image_key="image", label_key="label"):
    """One serialized `tf.train.Example`: the PNG of `pixels` and, when given, an int64 label."""
    feature = {
        image_key: tf.train.Feature(bytes_list=tf.train.BytesList(value=[tf.io.encode_png(pixels).numpy()]))
    }
    if label is not None:
        feature[label_key] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(label)]))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def write_shard(path, images, labels=None, **keys):
    with tf.io.TFRecordWriter(str(path)) as writer:
        for row, pixels in enumerate(images):
            writer.write(example(pixels, None if labels is None else labels[row], **keys))


def random_images(count, seed, shape=(8, 8, 1)):
    return np.random.default_rng(seed).integers(0, 256, size=(count, *shape), dtype=np.uint8)


def write_shards(folder, count, first=0, shape=(8, 8, 1)):
    """Shards `first .. first+count-1` of PER_SHARD random images each; returns `(images, labels)` written."""
    images = [random_images(PER_SHARD, seed=first + shard, shape=shape) for shard in range(count)]
    labels = [np.arange(PER_SHARD) % 5 for _ in range(count)]
    for shard in range(count):
        write_shard(f"{folder}/train-{first + shard:05d}.tfrecord", images[shard], labels[shard])
    return np.concatenate(images), np.concatenate(labels)


def image_bytes(images):
    return {pixels.tobytes() for pixels in images}


def test_images_labels_and_sizes_read_back_as_written(tmp_path):
    images = random_images(7, seed=1, shape=(10, 6, 3))
    labels = np.array([3, 0, 1, 4, 2, 2, 0])
    write_shard(tmp_path / "a.tfrecord", images[:4], labels[:4])
    write_shard(tmp_path / "b.tfrecord", images[4:], labels[4:])
    stream = stream_images(str(tmp_path / "*.tfrecord"))
    assert (stream.image_shape, stream.num_classes, len(stream)) == ((10, 6, 3), 5, 7)
    read = stream.to_image_set()
    np.testing.assert_array_equal(read.images, images)  # PNG is lossless: the arrays encoded
    np.testing.assert_array_equal(read.labels, labels)
    # --image-size and --channels apply
    resized = stream_images(str(tmp_path / "*.tfrecord"), image_size=(4, 4), channels=1)
    assert resized.to_image_set().images.shape == (7, 4, 4, 1)
    # unlabelled records and configurable feature names
    write_shard(tmp_path / "c.tfrecords", images, labels, image_key="png", label_key="class")
    named = stream_images(
        str(tmp_path / "c.tfrecords"), tfrecord_image_key="png", tfrecord_label_key="class"
    ).to_image_set()
    np.testing.assert_array_equal(named.labels, labels)
    unlabelled = stream_images(str(tmp_path / "c.tfrecords"), tfrecord_image_key="png")
    assert unlabelled.num_classes is None
    with pytest.raises(ValueError, match="--tfrecord-image-key"):
        stream_images(str(tmp_path / "c.tfrecords"))
    with pytest.raises(FileNotFoundError, match="no file matches"):
        stream_images(str(tmp_path / "missing-*.tfrecord"))
    assert is_tfrecord_source("mnist-train.tfrecord-00000-of-00001") and not is_tfrecord_source("a/b.npy")


def test_an_images_split_does_not_change_when_shards_are_added(tmp_path):
    old_images, _ = write_shards(tmp_path, 3)
    train, validation = stream_images(str(tmp_path / "train-*.tfrecord")).split(0.25, seed=3)
    old_validation = image_bytes(validation.to_image_set().images)
    old_train = image_bytes(train.to_image_set().images)
    assert old_validation and old_train and not old_validation & old_train
    assert old_validation | old_train == image_bytes(old_images)
    write_shards(tmp_path, 2, first=3)
    # The new shards sort between and after the old ones' positions would not matter either: renamed too.
    os.rename(tmp_path / "train-00000.tfrecord", tmp_path / "train-00009.tfrecord")
    train, validation = stream_images(str(tmp_path / "train-*.tfrecord")).split(0.25, seed=3)
    new_validation = image_bytes(validation.to_image_set().images)
    assert new_validation & image_bytes(old_images) == old_validation
    assert image_bytes(train.to_image_set().images) & image_bytes(old_images) == old_train
    assert len(new_validation) > len(old_validation)  # some new images were held out too


def epochs_of(stream, first_epoch, epochs, batch_size=5, seed=7):
    data, steps = stream.epoch_batches(batch_size, seed, first_epoch, epochs)
    return [batch.numpy() for batch in data], steps


def test_resuming_gives_the_batches_of_an_uninterrupted_read(tmp_path):
    images, _ = write_shards(tmp_path, 4)
    stream = stream_images(str(tmp_path / "*.tfrecord"), shuffle_buffer=8)
    uninterrupted, steps = epochs_of(stream, 0, 3)
    assert steps == -(-len(images) // 5) and len(uninterrupted) == 3 * steps
    # each epoch serves every image once, in another order
    epochs = [np.concatenate(uninterrupted[e * steps : (e + 1) * steps]) for e in range(3)]
    for epoch in epochs:
        served = np.rint(epoch * 255).astype(np.uint8)
        assert sorted(pixels.tobytes() for pixels in served) == sorted(pixels.tobytes() for pixels in images)
    assert not np.array_equal(epochs[0], epochs[1])
    # read k batches (into epoch 1), then resume from the saved position: epoch 1, k - steps batches in
    k = steps + 2
    data, _ = stream.epoch_batches(5, 7, 1, 3)
    resumed = [batch.numpy() for batch in data.skip(k - steps)]
    assert len(resumed) == len(uninterrupted) - k
    for got, want in zip(resumed, uninterrupted[k:]):
        np.testing.assert_array_equal(got, want)


def test_workers_get_disjoint_shares_by_file_or_by_record(tmp_path):
    images, _ = write_shards(tmp_path, 3)
    stream = stream_images(str(tmp_path / "*.tfrecord"))
    files = np.repeat(np.arange(3), PER_SHARD)  # the file of each image, in glob order
    for workers, by_file in ((2, True), (3, True), (4, False)):
        shares = [stream.shard(workers, index) for index in range(workers)]
        positions = np.concatenate([share.positions for share in shares])
        assert sorted(positions) == list(range(len(images)))  # disjoint, and every image once
        for index, share in enumerate(shares):
            read = share.to_image_set().images
            np.testing.assert_array_equal(read, images[share.positions])
            if by_file:  # whole files: every workers-th file
                assert set(files[share.positions]) == set(range(index, 3, workers))
            else:
                np.testing.assert_array_equal(share.positions, np.arange(index, len(images), workers))


def test_a_ram_tfrecord_glob_trains(tmp_path, run_cli, tiny_train_args):
    write_shards("ram://tfrecord-train", 3, shape=(8, 8, 1))
    run = tmp_path / "run"
    code, stdout, stderr = run_cli(
        ["train", "--run", run, "--data", "ram://tfrecord-train/train-*.tfrecord", *tiny_train_args]
    )
    assert code == 0, stderr
    assert os.path.isfile(run / "vqvae.keras")
    assert "ram://tfrecord-train/train-*.tfrecord" in (run / "config.json").read_text()
