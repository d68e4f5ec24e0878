"""`ImageStream`: a dataset read lazily from its source, batch by batch, inside `tf.data`."""

import contextlib
import functools
import hashlib

import numpy as np
import tensorflow as tf

from vqgen.data.error_text import first_line
from vqgen.data.image_header import read_image_header, refusal_in_pipeline
from vqgen.data.image_set import ImageSet
from vqgen.data.pipeline import epoch_batches, pixels_to_float, to_dataset
from vqgen.data.splitting import split_images
from vqgen.data.worker_shares import (
    distribute_per_worker,
    global_steps,
    per_replica_size,
    worker_count,
    worker_rows,
)

# No pixel limit: for reading the header of a file that failed in the pipeline (the limit was checked there).
UNLIMITED = 2**62
# Hash values are the first 8 bytes of a keyed BLAKE2b digest, read as a fraction of 2**64.
HASH_SCALE = float(2**64)


def split_fractions(keys, seed):
    """Returns, for each key, a fraction in [0, 1) fixed by the key and the seed alone.

    The same key gets the same fraction on every run and machine (BLAKE2b keyed by the seed), so a
    split by `fraction < validation_fraction` keeps every existing file on its side when others are
    added.

    Args:
        keys: sequence of str (relative paths, or example indices as text).
        seed: int >= 0.

    Returns:
        float64 array `[len(keys)]`.
    """
    salt = f"vqgen-split-{seed}".encode()
    digests = [
        int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8, key=salt).digest(), "big") for key in keys
    ]
    return np.asarray(digests, np.float64) / HASH_SCALE


class ImageStream:
    """An image dataset served from its source as `tf.data` batches, never held whole in memory.

    Three kinds of source stand behind it:

    - files (an image folder): the sorted paths and class labels are listed once; each epoch, a
      permutation of the indices (8 bytes per image, a uniform shuffle) is mapped through
      `tf.io.read_file` + `tf.io.decode_image` + the conversions of `vqgen.data.image_conversion`, in
      parallel, in order (`deterministic=True`), and batched;
    - an array (a memory-mapped uint8 `.npy`): the same, reading the rows of the mapping;
    - a sequence (a TFDS split, TFRecord files): read in order, filtered to this part of the split,
      and shuffled with a bounded buffer of `shuffle_buffer` images, seeded by `(seed, epoch)`; a
      sequence of several files (TFRecord) also reads its files in an order set by `(seed, epoch)`.

    Small in-memory sources (`ImageSet`: digits, photos, idx files, `.npz`) are served by
    `to_dataset` / `epoch_batches` unchanged, and split by `split_images`, so their split and order
    are those of earlier versions.

    Every epoch's order depends only on the seed and the epoch number, so a training resumed at
    epoch `e` sees exactly the batches of an uninterrupted one.

    Args:
        name: str. The source, for messages and configs.
        image_shape: `(H, W, C)` of every image served.
        num_classes: int or None.
        count: int. Images in this stream.
        image_set: `ImageSet` or None. An in-memory source (then nothing else is needed).
        positions: int64 array `[count]` or None. Indices of this stream's images in the source.
        read_element: function `position -> uint8 [H, W, C]` (a tf function) for files and arrays.
        labels: int32 array over the whole source, or None.
        keys: function `positions -> list of str`, the split keys (relative paths, indices).
        sequence: function `(positions, order) -> Dataset of (position, image, label)` for in-order
            sources: at least the examples at `positions` (sorted), in source order when `order` is
            None, else in an order of files set by `order` (a `(seed, epoch)` pair) where it has files.
        shuffle_buffer: int. Buffer of a sequence's shuffle.
        files: array of str or None. The file of each source position (files only), for messages.
        file_indices: int array over the source's positions, or None. For sources of several
            examples per file (TFRecord): the file of each example, so `shard` splits by file.

    Example:
    >>> stream = stream_images("my_images/", image_size=(64, 64))
    >>> train, validation = stream.split(0.1, seed=0)
    >>> batches, steps = train.epoch_batches(64, seed=0, first_epoch=0, epochs=10)
    """

    def __init__(
        self,
        name,
        image_shape,
        num_classes,
        count,
        image_set=None,
        positions=None,
        read_element=None,
        labels=None,
        keys=None,
        sequence=None,
        shuffle_buffer=10000,
        files=None,
        file_indices=None,
    ):
        self.name = name
        self.image_shape = tuple(int(size) for size in image_shape)
        self.num_classes = num_classes
        self.count = int(count)
        self.image_set = image_set
        self.positions = positions
        self._read_element = read_element
        self._labels = labels
        self._keys = keys
        self._sequence = sequence
        self.shuffle_buffer = int(shuffle_buffer)
        self._files = files
        self._file_indices = file_indices

    @classmethod
    def from_image_set(cls, images):
        """Wraps an in-memory `ImageSet` (served exactly as `to_dataset`/`epoch_batches` serve it)."""
        return cls(images.name, images.image_shape, images.num_classes, len(images), image_set=images)

    def __len__(self):
        return self.count

    @property
    def has_labels(self):
        """Whether every image has a class label."""
        return self.num_classes is not None

    def __repr__(self):
        kind = "in memory" if self.image_set is not None else "streamed"
        return f"ImageStream(name={self.name!r}, {kind}, count={self.count}, image_shape={self.image_shape})"

    # Splitting and sharding

    def _part(self, positions):
        return ImageStream(
            self.name,
            self.image_shape,
            self.num_classes,
            len(positions),
            positions=positions,
            read_element=self._read_element,
            labels=self._labels,
            keys=self._keys,
            sequence=self._sequence,
            shuffle_buffer=self.shuffle_buffer,
            files=self._files,
            file_indices=self._file_indices,
        )

    def split(self, validation_fraction, seed):
        """Splits into `(train, validation)` streams, the same on every run and machine.

        An in-memory source is split by `split_images` (a seeded permutation). A streamed one puts an
        image in the validation part when the seeded hash of its key (a file's path relative to the
        folder, an example's index, a TFRecord image's digest) is below `validation_fraction`: no
        shuffle in memory, and an image keeps its side when files are added. When no key falls below
        the fraction, the image with the smallest hash is held out, so a positive fraction always
        gives a validation image.

        Args:
            validation_fraction: float in [0, 1).
            seed: int >= 0.

        Returns:
            `(train, validation)` ImageStreams.

        Raises:
            ValueError: if nothing would be left to train on.
        """
        if self.image_set is not None:
            train, validation = split_images(self.image_set, validation_fraction, seed=seed)
            return ImageStream.from_image_set(train), ImageStream.from_image_set(validation)
        fractions = split_fractions(self._keys(self.positions), seed)
        held_out = fractions < validation_fraction
        if validation_fraction > 0 and not held_out.any():
            held_out[np.argmin(fractions)] = True
        if held_out.all():
            raise ValueError(
                f"validation_fraction={validation_fraction} of {self.count} images from {self.name!r} "
                f"leaves no training images; lower the fraction or add images"
            )
        return self._part(self.positions[~held_out]), self._part(self.positions[held_out])

    def slice(self, start, stop):
        """Images `start .. stop-1` of this stream, in source order, as a stream."""
        if self.image_set is not None:
            part = self.image_set
            labels = None if part.labels is None else part.labels[start:stop]
            return ImageStream.from_image_set(
                ImageSet(part.images[start:stop], labels, part.num_classes, part.name)
            )
        return self._part(self.positions[start:stop])

    def shard(self, num_shards, index):
        """The `index`-th of `num_shards` disjoint parts, e.g. per worker.

        Images are dealt out one by one (every `num_shards`-th image), except for a source of several
        images per file (TFRecord) that has at least `num_shards` files in this stream: then whole
        files are dealt out (every `num_shards`-th file), so each part reads only its own files.
        """
        if self.image_set is not None:
            raise ValueError(f"{self.name!r} is held in memory; shard its dataset with tf.data instead")
        if self._file_indices is not None:
            files = self._file_indices[self.positions]
            used = np.unique(files)
            if len(used) >= num_shards:
                return self._part(self.positions[np.searchsorted(used, files) % num_shards == index])
        return self._part(self.positions[index::num_shards])

    # Serving

    def _elements(self, positions, with_labels):
        """Maps a Dataset of source positions to uint8 images (and int32 labels), in parallel, in order."""
        read = self._read_element
        labels = None if self._labels is None else tf.constant(self._labels, tf.int32)

        def element(position):
            pixels = read(position)
            return (pixels, tf.gather(labels, position)) if with_labels else pixels

        return positions.map(element, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    def _sequence_part(self, with_labels, order=None):
        """This part of a sequence source: in source order, or its files in the order `order` sets."""
        member = np.zeros(int(self.positions.max()) + 1 if self.count else 0, bool)
        member[self.positions] = True
        size = len(member)
        member = tf.constant(member)

        def keep(position, image, label):
            return tf.logical_and(position < size, tf.gather(member, tf.minimum(position, size - 1)))

        # A known length: Keras then stops a validation pass without warning that the data ran out.
        examples = self._sequence(self.positions, order).filter(keep)
        examples = examples.apply(tf.data.experimental.assert_cardinality(self.count))
        if with_labels:
            return examples.map(lambda position, image, label: (image, label))
        return examples.map(lambda position, image, label: image)

    def _float_batches(self, elements, batch_size, with_labels):
        batches = elements.batch(int(batch_size))
        if with_labels:
            batches = batches.map(lambda pixels, labels: (pixels_to_float(pixels), labels))
        else:
            batches = batches.map(pixels_to_float)
        return batches.prefetch(tf.data.AUTOTUNE)

    def batches(self, batch_size, with_labels=False, strategy=None):
        """float32 `[b, H, W, C]` batches in [0, 1] (and int32 labels) in source order, one pass.

        Under a `MultiWorkerMirroredStrategy` with several workers, each worker reads only its share
        of a streamed set (see `epoch_batches`): the pass is completed to whole global batches with
        its first images, so every worker runs the same number of steps.

        Args:
            batch_size: int >= 1. The (global) batch size.
            with_labels: bool. Elements are `(images, labels)`; requires labels.
            strategy: a `tf.distribute.Strategy` or None.

        Returns:
            A `tf.data.Dataset`, or a distributed dataset in the multi-worker case.
        """
        if with_labels and not self.has_labels:
            raise ValueError(f"{self.name!r} has no labels; pass with_labels=False or use a labelled source")
        if self.image_set is not None:
            return to_dataset(self.image_set, batch_size, with_labels=with_labels)
        if worker_count(strategy) > 1:
            return self._distributed_passes(strategy, batch_size, [None], with_labels)[0]
        if self._sequence is not None:
            elements = self._sequence_part(with_labels)
        else:
            elements = self._elements(tf.data.Dataset.from_tensor_slices(self.positions), with_labels)
        return self._float_batches(elements, batch_size, with_labels)

    def epoch_batches(self, batch_size, seed, first_epoch, epochs, strategy=None, images_per_epoch=None):
        """Shuffled float32 batches of epochs `first_epoch .. epochs-1`, epoch e in an order set by (seed, e).

        Files and arrays are shuffled uniformly, by a permutation of their indices; a sequence
        source (TFDS) by a buffer of `shuffle_buffer` images. Either way epoch `e` is the same
        whether or not the training was interrupted before it (see `vqgen.data.epoch_batches`).

        Under a `MultiWorkerMirroredStrategy` with several workers, a streamed set is read through
        `strategy.distribute_datasets_from_function`, each worker reading only its share:

        - files and arrays: every worker computes the epoch's permutation (the one a single process
          uses) and reads only its replicas' slices of each global batch
          (`vqgen.data.worker_shares.worker_rows`), so the global batches are a single process's;
          the last global batch of an epoch is completed with the epoch's first images;
        - a sequence source: worker `i` of `n` reads `shard(n, i)`, shuffled by its buffer; a
          worker whose share is short repeats the first image(s) of its epoch.

        Either way every worker runs the same number of steps per epoch.

        Args:
            batch_size: int >= 1. The (global) batch size; the last batch of an epoch may be smaller.
            seed: int. Shuffle seed.
            first_epoch: int. The first epoch to serve (0-based).
            epochs: int. One past the last epoch to serve.
            strategy: a `tf.distribute.Strategy` or None.
            images_per_epoch: int or None. Serve exactly this many images per epoch (the epoch's
                order repeated as needed); None serves each image once.

        Returns:
            `(dataset, steps_per_epoch)`, for `fit(..., steps_per_epoch=...)`; the dataset is a
            distributed dataset in the multi-worker case.
        """
        if self.image_set is None and worker_count(strategy) > 1:
            return self._distributed_passes(strategy, batch_size, range(first_epoch, epochs), False, seed)
        if self.image_set is not None:
            return epoch_batches(
                self.image_set.images, batch_size, seed, first_epoch, epochs, transform=pixels_to_float
            )
        per_epoch = self.count if images_per_epoch is None else int(images_per_epoch)
        steps_per_epoch = -(-per_epoch // int(batch_size))

        def one_epoch(epoch):
            if self._sequence is not None:  # read in order: a bounded buffer, seeded by (seed, epoch)
                elements = self._sequence_part(False, order=(seed, epoch)).shuffle(
                    self.shuffle_buffer, seed=seed * 1000003 + epoch
                )
            else:
                elements = self._elements(
                    tf.data.Dataset.from_tensor_slices(self._epoch_positions(seed, epoch)), False
                )
            if images_per_epoch is not None:
                elements = elements.repeat().take(per_epoch)
            return elements.batch(int(batch_size))  # within the epoch: its last batch may be smaller

        return _chained(one_epoch, range(first_epoch, epochs)), steps_per_epoch

    def _epoch_positions(self, seed, epoch):
        """The source positions of epoch `epoch` in its `(seed, epoch)` order (a uniform permutation)."""
        order = tf.random.experimental.stateless_shuffle(
            tf.range(self.count, dtype=tf.int64), tf.constant([seed, epoch], tf.int64)
        )
        return tf.gather(tf.constant(self.positions, tf.int64), order)

    def _distributed_passes(self, strategy, batch_size, epochs, with_labels, seed=None):
        """Passes over a streamed set under several workers, each reading only its own share.

        Args:
            strategy: a `MultiWorkerMirroredStrategy`.
            batch_size: int. The global batch size.
            epochs: the epoch numbers to serve, shuffled by `(seed, epoch)`; `[None]`: one pass in
                source order.
            with_labels: bool.
            seed: int or None. Shuffle seed (with epoch numbers).

        Returns:
            `(distributed dataset, steps per pass)`.
        """
        per_replica = per_replica_size(batch_size, strategy)
        replicas = strategy.num_replicas_in_sync
        workers = worker_count(strategy)
        if self._sequence is not None:  # each worker its own share of the examples, shuffled by its buffer
            local_batch = per_replica * (replicas // workers)
            # whole files are dealt out where there are enough: the shares may differ by more than one
            largest_share = max(len(self.shard(workers, index)) for index in range(workers))
            steps = -(-largest_share // local_batch)

            def dataset_fn(context):
                share = self.shard(context.num_input_pipelines, context.input_pipeline_id)

                def one_pass(epoch):
                    elements = share._sequence_part(with_labels)
                    if epoch is not None:
                        elements = elements.shuffle(self.shuffle_buffer, seed=seed * 1000003 + epoch)
                    return elements.repeat().take(steps * local_batch).batch(per_replica)

                return _chained(one_pass, epochs, with_labels)

            return distribute_per_worker(strategy, dataset_fn), steps

        steps = global_steps(self.count, batch_size, strategy)

        def dataset_fn(context):
            def one_pass(epoch):
                if epoch is None:
                    order = tf.constant(self.positions, tf.int64)
                else:
                    order = self._epoch_positions(seed, epoch)
                rows = worker_rows(order, steps, per_replica, context, replicas)
                elements = self._elements(tf.data.Dataset.from_tensor_slices(rows), with_labels)
                return elements.batch(per_replica)

            return _chained(one_pass, epochs, with_labels)

        return distribute_per_worker(strategy, dataset_fn), steps

    def first_images(self, count):
        """The first `count` images in source order as a uint8 (or float32) array `[n, H, W, C]`."""
        if self.image_set is not None:
            return self.image_set.images[:count]
        head = self._part(self.positions[:count]) if self._sequence is None else self
        images = []
        for batch in head.batches(256).take(-(-count // 256)):
            images.append(np.rint(batch.numpy() * 255).astype(np.uint8))
        return np.concatenate(images)[:count]

    def undecodable_file(self):
        """The first file of this stream that fails to decode or convert, or None (one parallel pass)."""
        if self._files is None or self._read_element is None:
            return None
        read = self._read_element
        checked = tf.data.Dataset.from_tensor_slices(self.positions).map(
            lambda position: (position, read(position)), num_parallel_calls=tf.data.AUTOTUNE
        )  # the pixels are kept: a size alone has a static shape and lets TensorFlow skip the decoding
        readable = {int(position) for position, _ in checked.ignore_errors().as_numpy_iterator()}
        failed = [position for position in self.positions if int(position) not in readable]
        return str(self._files[failed[0]]) if failed else None

    def to_image_set(self):
        """Reads the whole stream into an in-memory `ImageSet` (for small sets and tests)."""
        if self.image_set is not None:
            return self.image_set
        images, labels = [], []
        for batch in self.batches(1024, with_labels=self.has_labels):
            pixels, batch_labels = batch if self.has_labels else (batch, None)
            images.append(np.rint(pixels.numpy() * 255).astype(np.uint8))
            if batch_labels is not None:
                labels.append(batch_labels.numpy())
        return ImageSet(
            np.concatenate(images),
            np.concatenate(labels) if labels else None,
            self.num_classes,
            self.name,
        )


def _chained(one_pass, epochs, with_labels=False):
    """The uint8 batches of `one_pass(epoch)` for each epoch, chained, as float32 in [0, 1], prefetched.

    One dataset per epoch: `epoch` stays a Python int, so a sequence source's shuffle gets a static
    seed (a traced epoch inside `flat_map` cannot seed `Dataset.shuffle`).
    """
    passes = [one_pass(epoch) for epoch in epochs]
    batches = functools.reduce(tf.data.Dataset.concatenate, passes) if passes else one_pass(0).take(0)
    if with_labels:
        batches = batches.map(lambda pixels, labels: (pixels_to_float(pixels), labels))
    else:
        batches = batches.map(pixels_to_float)
    return batches.prefetch(tf.data.AUTOTUNE)


@contextlib.contextmanager
def naming_undecodable_files(*streams):
    """Turns a decoding error inside a `tf.data` pipeline into a ValueError that names the file.

    A file whose header reads fine may still fail in `tf.io.decode_image` (truncated data, a GIF
    palette TensorFlow refuses), and a file may be removed or replaced after the listing;
    TensorFlow's message does not say which file. On such an error the
    streams are checked file by file (in parallel) and the first bad file is named. An image the
    pipeline refused for its pixel count (`decode_within_limit`, which names it) is reported with
    that refusal's one line.

    Args:
        *streams: the `ImageStream`s read inside the block.

    Raises:
        ValueError: naming the undecodable or too large file, when one is found; otherwise the
            original error.
    """
    try:
        yield
    except (
        tf.errors.InvalidArgumentError,
        tf.errors.NotFoundError,
        tf.errors.PermissionDeniedError,
    ) as error:
        refusal = refusal_in_pipeline(error)
        if refusal is not None:
            raise ValueError(refusal) from None
        for stream in streams:
            path = stream.undecodable_file()
            if path is not None:
                # A file gone or no longer an image since the listing: its header says which.
                read_image_header(path, path, max_pixels=UNLIMITED)
                raise ValueError(
                    f"cannot decode {path!r} ({first_line(error.message)}); the file is corrupt or "
                    f"mislabelled, re-save or remove it"
                ) from None
        raise
