"""`stream_tfrecords`: a glob of TFRecord files of `tf.train.Example`s (encoded images) as an `ImageStream`.

The records hold the encoded image (PNG, JPEG, BMP, GIF, WebP bytes) under one feature and, optionally,
an integer label under another; the default names, `image` and `label`, are the ones TFDS writes for
its image datasets (`tfds.features.Image` serialises to PNG/JPEG bytes, `ClassLabel` to an int64).
"""

import hashlib
import io
import os

import numpy as np
import tensorflow as tf

from vqgen.data.error_text import first_line
from vqgen.data.image_conversion import common_image_shape, image_transform
from vqgen.data.image_header import (
    check_decodable,
    check_max_image_pixels,
    decode_within_limit,
    read_image_header,
)
from vqgen.data.image_stream import ImageStream
from vqgen.settings import DATA_DEFAULTS

# Records parsed at once while indexing the files.
INDEX_BATCH = 256
# Files read at once (interleaved) in a shuffled epoch.
INTERLEAVED_FILES = 4
# Indexing more records than this shows a progress bar.
PROGRESS_FROM = 2000


def is_tfrecord_source(source):
    """Whether a `--data` source names TFRecord files: `.tfrecord` in its last path part (a glob or not).

    Covers `train-*.tfrecord`, `*.tfrecords` and TFDS's `mnist-train.tfrecord-00000-of-00001`.

    Example:
    >>> is_tfrecord_source("gs://bucket/shards/train-*.tfrecord"), is_tfrecord_source("faces/")
    (True, False)
    """
    return isinstance(source, str) and ".tfrecord" in os.path.basename(source.rstrip("/"))


def _record_name(file, record):
    return f"{file} record {record}"


def _index_records(files, image_key, label_key, max_pixels, verbose):
    """Reads every record once (headers only): counts per file, sizes, modes, content digests, labels.

    Returns:
        `(counts [F], sizes [N, 2], modes set, digests list of bytes [N], labels int32 [N] or None)`.
    """
    import keras

    features = {
        image_key: tf.io.FixedLenFeature([], tf.string),
        label_key: tf.io.VarLenFeature(tf.int64),
    }
    counts, sizes, modes, digests, labels, labelled = [], [], set(), [], [], []
    progress = None
    for file in files:
        count = 0
        records = (
            tf.data.TFRecordDataset(file).batch(INDEX_BATCH).map(lambda r: tf.io.parse_example(r, features))
        )
        try:
            for batch in records:
                images = batch[image_key].numpy()
                label_rows = batch[label_key].indices.numpy()[:, 0]
                per_record = np.bincount(label_rows, minlength=len(images))
                if per_record.max(initial=0) > 1:
                    raise ValueError(
                        f"{_record_name(file, count + int(np.argmax(per_record)))} holds several values "
                        f"under {label_key!r}; give one integer label per image, or another "
                        "--tfrecord-label-key"
                    )
                values = np.full(len(images), -1, np.int64)
                values[label_rows] = batch[label_key].values.numpy()
                for data, value, has_label in zip(images, values, per_record == 1):
                    name = _record_name(file, count)
                    header = read_image_header(io.BytesIO(data), name, max_pixels)
                    check_decodable(header, name)
                    sizes.append((header.height, header.width))
                    modes.add(header.mode)
                    digests.append(hashlib.blake2b(data, digest_size=16).digest())
                    labels.append(value)
                    labelled.append(has_label)
                    count += 1
                if progress is None and verbose and len(digests) > PROGRESS_FROM:
                    progress = keras.utils.Progbar(None, unit_name="record")
                    print(f"Indexing the records of {len(files)} TFRecord files")
                if progress is not None:
                    progress.update(len(digests))
        except tf.errors.InvalidArgumentError as error:
            raise ValueError(
                f"cannot read the records of {file} ({first_line(error.message)}); they must be "
                f"tf.train.Example with the encoded image under --tfrecord-image-key (now {image_key!r})"
            ) from None
        except tf.errors.DataLossError as error:
            raise ValueError(
                f"{file} is not a TFRecord file or is truncated ({first_line(error.message)}); write it "
                "again or leave it out of the glob"
            ) from None
        counts.append(count)
    if progress is not None:
        progress.update(len(digests), finalize=True)
    labelled = np.asarray(labelled, bool)
    if labelled.any() and not labelled.all():
        missing = int(np.argmin(labelled))
        raise ValueError(
            f"some records have a label under {label_key!r} and others not (record {missing} of the glob has "
            "none); label every image, or pass a --tfrecord-label-key that no record has"
        )
    has_labels = bool(labelled.size) and bool(labelled.all())
    labels = np.asarray(labels, np.int64)
    if has_labels and labels.min() < 0:
        raise ValueError(f"labels under {label_key!r} must be integers >= 0; found {labels.min()}")
    return (
        np.asarray(counts, np.int64),
        np.asarray(sizes, np.int64).reshape(-1, 2),
        modes,
        digests,
        labels.astype(np.int32) if has_labels else None,
    )


def stream_tfrecords(
    pattern,
    image_size=None,
    channels=None,
    shuffle_buffer=DATA_DEFAULTS.shuffle_buffer,
    verbose=1,
    max_image_pixels=DATA_DEFAULTS.max_image_pixels,
    image_key=DATA_DEFAULTS.tfrecord_image_key,
    label_key=DATA_DEFAULTS.tfrecord_label_key,
):
    """The TFRecord files matching `pattern` (local or any `tf.io.gfile` URL) as a streamed `ImageStream`.

    The files are indexed once, like a folder's listing: every record's header is read (its size,
    mode and pixel count, checked against `max_image_pixels`; no pixel is decoded) and a digest of its
    encoded bytes is kept (16 bytes an image). The digest is the record's split key, so an image keeps
    its side of the train/validation split whatever files are added, removed or renamed (`ImageStream.split`).
    Training then reads the files again, batch by batch: each epoch reads its files in an order set by
    `(seed, epoch)`, interleaved, and shuffles the records through a buffer of `shuffle_buffer`
    images, so a resumed training sees the batches of an uninterrupted one. Under several workers each
    reads its own files (`ImageStream.shard`: by file when there are enough files, else by record).

    Args:
        pattern: str. A file or a glob (`tf.io.gfile.glob`), e.g. `"shards/train-*.tfrecord"`.
        image_size: `(H, W)` or None. Scale and centre-crop; None requires one size.
        channels: 1, 3 or None (`set_channels`).
        shuffle_buffer: int. Images held for shuffling.
        verbose: int. 0 hides the indexing progress bar.
        max_image_pixels: int >= 1. The largest height x width of an image.
        image_key: str. The feature holding the encoded image. Defaults to TFDS's `"image"`.
        label_key: str. The int64 feature holding the label; labels are used when every record has one.

    Returns:
        An `ImageStream`; `num_classes` is `max(label) + 1` when labelled.

    Raises:
        FileNotFoundError: no file matches `pattern`.
        ValueError: a record without the image feature, a file that is not a TFRecord, an image too large
            or not decodable (naming the file and record), mixed sizes without `image_size`, or labels on
            some records only.

    Example:
    >>> stream = stream_tfrecords("shards/train-*.tfrecord", image_size=(64, 64))  # doctest: +SKIP
    >>> train, validation = stream.split(0.1, seed=0)  # doctest: +SKIP
    """
    max_image_pixels = check_max_image_pixels(max_image_pixels)
    files = np.asarray(sorted(tf.io.gfile.glob(pattern)))
    if not files.size:
        raise FileNotFoundError(f"no file matches {pattern!r}; check the path or glob of the TFRecord files")
    counts, sizes, modes, digests, labels = _index_records(
        files, image_key, label_key, max_image_pixels, verbose
    )
    total = int(counts.sum())
    if total == 0:
        raise ValueError(f"the TFRecord files {pattern!r} hold no records; use non-empty files")
    record_names = [
        f"{os.path.basename(file)} record {i}" for file, n in zip(files, counts) for i in range(n)
    ]
    image_shape = common_image_shape(pattern, record_names, sizes, modes, image_size, channels)
    del record_names
    transform = image_transform(image_shape, image_size)
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    file_indices = np.repeat(np.arange(len(files), dtype=np.int32), counts)
    features = {image_key: tf.io.FixedLenFeature([], tf.string)}
    if labels is not None:
        features[label_key] = tf.io.FixedLenFeature([], tf.int64)

    def example(position, record, file, index):
        parsed = tf.io.parse_single_example(record, features)
        name = tf.strings.join([file, " record ", tf.strings.as_string(index)])
        pixels = transform(decode_within_limit(parsed[image_key], name, max_image_pixels))
        label = tf.cast(parsed[label_key], tf.int32) if labels is not None else tf.constant(0, tf.int32)
        return position, pixels, label

    def sequence(positions, order):
        member = np.zeros(total, bool)
        member[positions] = True
        used = np.unique(file_indices[positions])
        if order is not None:
            used = np.random.default_rng([int(part) for part in order]).permutation(used)
        member = tf.constant(member)

        def records_of(file, offset):
            return (
                tf.data.TFRecordDataset(file)
                .enumerate()
                .map(lambda index, record: (offset + index, record, file, index))
            )

        records = tf.data.Dataset.from_tensor_slices((files[used], offsets[used])).interleave(
            records_of,
            cycle_length=1 if order is None else min(INTERLEAVED_FILES, len(used)),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
        records = records.filter(lambda position, record, file, index: tf.gather(member, position))
        return records.map(example, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    return ImageStream(
        pattern,
        image_shape,
        int(labels.max()) + 1 if labels is not None else None,
        total,
        positions=np.arange(total, dtype=np.int64),
        keys=lambda positions: [digests[p].hex() for p in positions],
        sequence=sequence,
        shuffle_buffer=shuffle_buffer,
        file_indices=file_indices,
    )
