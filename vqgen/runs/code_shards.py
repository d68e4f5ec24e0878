"""`CodeShards`: a run's dataset coded by its VQ-VAE, written in shards and streamed back to the prior.

Layout of `RUN/codes/`:

    manifest.json                 the vqvae.keras hash, shard size, counts and each shard's hash
    train/00000.npy ...           int32 codes `[<= SHARD_SIZE, h, w]` (`[..., d]` for residual VQ)
    train/00000.labels.npy ...    int32 labels `[<= SHARD_SIZE]` (empty when the set has none)
    validation/...                the same for the validation split

Every file is written atomically as the dataset is coded, the manifest last. The shards are checked,
not assumed: on opening, a manifest naming another `vqvae.keras` (by SHA-256) means every shard is
stale and the dataset is coded again; a shard whose bytes no longer match its recorded hash (or that
is missing) is damaged and only its images are coded again.
"""

import functools
import hashlib
import io
import json
import os

import numpy as np
import tensorflow as tf

from vqgen.data.image_stream import naming_undecodable_files
from vqgen.data.worker_shares import (
    distribute_per_worker,
    global_steps,
    per_replica_size,
    worker_count,
    worker_rows,
)
from vqgen.runs.atomic_file import write_bytes_atomically, write_text_atomically

# Images per shard; a multiple of CODING_BATCH so a shard is a whole number of coding batches.
SHARD_SIZE = 4096
CODING_BATCH = 256
PARTS = ("train", "validation")
MANIFEST_VERSION = 1


def file_hash(path):
    """SHA-256 hex digest of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def npy_bytes(array):
    """The bytes of `array` as a `.npy` file (no pickling)."""
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


class CodeShards:
    """The coded train and validation splits of a run, in `.npy` shards checked by hash.

    Args:
        folder: str. The `codes/` folder of a run.

    Example:
    >>> shards = CodeShards.build_or_open("runs/x/codes", vqvae, "runs/x/vqvae.keras", streams)
    >>> batches, steps = shards.epoch_batches("train", 64, seed=0, first_epoch=0, epochs=10)
    """

    def __init__(self, folder, manifest):
        self.folder = folder
        self.manifest = manifest

    @classmethod
    def open(cls, folder):
        """Opens shards as their manifest describes them, without checking them (for reading tools).

        Raises:
            FileNotFoundError: `folder` has no readable manifest.
        """
        manifest = cls._read_manifest(folder)
        if manifest is None:
            raise FileNotFoundError(f"{folder} holds no coded dataset; run `vqgen train-prior` first")
        return cls(folder, manifest)

    # Writing

    @classmethod
    def build_or_open(cls, folder, vqvae, vqvae_path, streams, verbose=1):
        """Opens the shards in `folder`, coding again whatever is missing, damaged or stale.

        Args:
            folder: str. The run's `codes/` folder (created).
            vqvae: the run's VQVAE.
            vqvae_path: str. Its `.keras` file, whose hash the shards must carry.
            streams: dict `"train"`/`"validation"` -> `ImageStream`, in the run's split, or a
                function returning that dict (called only when something must be coded).
            verbose: int. 1 shows a progress bar while coding.

        Returns:
            `CodeShards`.
        """
        model_hash = file_hash(vqvae_path)
        manifest = cls._read_manifest(folder)
        if manifest is not None and manifest.get("vqvae_sha256") != model_hash:
            print(f"{folder} was coded by another vqvae.keras; coding the dataset again")
            manifest = None
        if manifest is None:
            damaged = {part: None for part in PARTS}  # None: every shard
        else:
            damaged = {part: cls._damaged_shards(folder, part, manifest) for part in PARTS}
            if not any(damaged.values()):
                return cls(folder, manifest)
            names = [f"{part}/{index:05d}" for part in PARTS for index in damaged[part]]
            print(f"{folder}: shard(s) {', '.join(names)} damaged or missing; coding their images again")
        if callable(streams):
            streams = streams()
        parts = {} if manifest is None else manifest["parts"]
        for part in PARTS:
            if damaged[part] == []:
                continue
            previous = parts.get(part)
            with naming_undecodable_files(streams[part]):
                parts[part] = cls._code_part(
                    folder, part, vqvae, streams[part], damaged[part], previous, verbose
                )
        manifest = {
            "version": MANIFEST_VERSION,
            "vqvae_sha256": model_hash,
            "shard_size": SHARD_SIZE,
            "parts": parts,
        }
        write_text_atomically(os.path.join(folder, "manifest.json"), json.dumps(manifest, indent=2))
        return cls(folder, manifest)

    @staticmethod
    def _read_manifest(folder):
        try:
            with open(os.path.join(folder, "manifest.json")) as stream:
                manifest = json.load(stream)
            if manifest.get("version") != MANIFEST_VERSION or manifest.get("shard_size") != SHARD_SIZE:
                return None
            for part in PARTS:
                manifest["parts"][part]["shards"]  # noqa: B018  (a KeyError means a broken manifest)
            return manifest
        except (OSError, ValueError, KeyError, TypeError):
            return None

    @staticmethod
    def _damaged_shards(folder, part, manifest):
        """Indices of `part`'s shards whose files are missing or differ from their recorded hashes."""
        damaged = []
        for index, shard in enumerate(manifest["parts"][part]["shards"]):
            for name, expected in (("codes", shard["codes_sha256"]), ("labels", shard["labels_sha256"])):
                path = os.path.join(folder, part, shard[name])
                if not os.path.isfile(path) or file_hash(path) != expected:
                    damaged.append(index)
                    break
        return damaged

    @staticmethod
    def _shard_batches(stream, only):
        """Yields `(shard index, its batches)`: one pass over the stream, or only the shards in `only`."""
        with_labels = stream.has_labels
        if only is None:
            batches_per_shard = SHARD_SIZE // CODING_BATCH
            shard, index = [], 0
            for batch in stream.batches(CODING_BATCH, with_labels=with_labels):
                shard.append(batch)
                if len(shard) == batches_per_shard:
                    yield index, shard
                    shard, index = [], index + 1
            if shard:
                yield index, shard
            return
        for index in only:
            yield (
                index,
                stream.slice(index * SHARD_SIZE, (index + 1) * SHARD_SIZE).batches(
                    CODING_BATCH, with_labels=with_labels
                ),
            )

    @staticmethod
    def _code_part(folder, part, vqvae, stream, only, previous, verbose):
        """Codes `stream` (every shard, or the shard indices in `only`); returns the part's manifest entry."""
        import keras

        os.makedirs(os.path.join(folder, part), exist_ok=True)
        count = len(stream)
        entry = {"count": count, "shards": [None] * -(-count // SHARD_SIZE)}
        if only is not None:
            entry["shards"] = list(previous["shards"])
        target = count if only is None else min(count, len(only) * SHARD_SIZE)
        progress = keras.utils.Progbar(target, unit_name="image") if verbose else None
        if progress is not None:
            print(f"Coding {target:,} images of the {part} split for the prior")
        done = 0
        for index, batches in CodeShards._shard_batches(stream, only):
            codes, labels = [], []
            for batch in batches:
                images, batch_labels = batch if stream.has_labels else (batch, None)
                codes.append(np.asarray(vqvae.encode(images), np.int32))
                if batch_labels is not None:
                    labels.append(batch_labels.numpy().astype(np.int32))
                done += len(codes[-1])
                if progress is not None:
                    progress.update(done)
            codes = np.concatenate(codes)
            labels = np.concatenate(labels) if labels else np.zeros([0], np.int32)
            names = {"codes": f"{index:05d}.npy", "labels": f"{index:05d}.labels.npy"}
            shard = {**names, "count": len(codes)}
            for name, array in (("codes", codes), ("labels", labels)):
                data = npy_bytes(array)
                write_bytes_atomically(os.path.join(folder, part, names[name]), data)
                shard[f"{name}_sha256"] = hashlib.sha256(data).hexdigest()
            entry["shards"][index] = shard
        return entry

    # Reading

    def count(self, part):
        """Images in `part` ("train" or "validation")."""
        return int(self.manifest["parts"][part]["count"])

    def _mapped(self, part, name):
        return [
            np.load(os.path.join(self.folder, part, shard[name]), mmap_mode="r", allow_pickle=False)
            for shard in self.manifest["parts"][part]["shards"]
        ]

    def shards(self, part):
        """Yields `(codes, labels)` of each shard of `part`, memory-mapped (labels may be empty)."""
        yield from zip(self._mapped(part, "codes"), self._mapped(part, "labels"))

    def arrays(self, part):
        """`(codes, labels)` of `part` as whole in-memory arrays (for small sets and tests)."""
        codes, labels = zip(*self.shards(part))
        return np.concatenate(codes), np.concatenate(labels)

    def _reader(self, part):
        """A tf function `int64 rows [b] -> (codes [b, ...], labels [b])` reading the mapped shards."""
        codes, labels = self._mapped(part, "codes"), self._mapped(part, "labels")
        code_shape = codes[0].shape[1:]
        has_labels = labels[0].size > 0

        def read(rows):
            shard, offset = np.divmod(rows, SHARD_SIZE)
            picked = np.stack([codes[s][o] for s, o in zip(shard, offset)]).astype(np.int32)
            chosen = np.array(
                [labels[s][o] for s, o in zip(shard, offset)] if has_labels else [0] * len(rows)
            )
            return picked, chosen.astype(np.int32)

        def tf_read(rows):
            picked, chosen = tf.numpy_function(read, [rows], (tf.int32, tf.int32), stateful=False)
            return tf.ensure_shape(picked, [None, *code_shape]), tf.ensure_shape(chosen, [None])

        return tf_read

    def batches(self, part, batch_size, transform, strategy=None):
        """`transform(codes, labels)` of `part`'s batches in order, one pass.

        Under a `MultiWorkerMirroredStrategy` with several workers, each worker reads only its
        replicas' slices of each global batch (`vqgen.data.worker_shares.worker_rows`; the pass is
        completed to whole global batches with its first rows).

        Returns:
            A `tf.data.Dataset`, or a distributed dataset in the multi-worker case.
        """
        if worker_count(strategy) > 1:
            return self._distributed_passes(part, batch_size, transform, strategy, [None])[0]
        rows = tf.data.Dataset.range(self.count(part)).batch(int(batch_size))
        return rows.map(self._reader(part)).map(transform).prefetch(tf.data.AUTOTUNE)

    def epoch_batches(self, part, batch_size, seed, first_epoch, epochs, transform, strategy=None):
        """Shuffled batches of epochs `first_epoch .. epochs-1`, epoch e in the order set by (seed, e).

        The order of each epoch is the permutation `vqgen.data.epoch_batches` uses, so a resumed
        prior sees the batches of an uninterrupted one, and the same as when codes were in memory.
        Under a `MultiWorkerMirroredStrategy` with several workers, each worker reads only its
        replicas' slices of each global batch of that order, so the global batches are those of a
        single process (the last one of an epoch completed with the epoch's first rows).

        Returns:
            `(dataset, steps_per_epoch)`; the dataset is distributed in the multi-worker case.
        """
        if worker_count(strategy) > 1:
            epoch_numbers = range(first_epoch, epochs)
            return self._distributed_passes(part, batch_size, transform, strategy, epoch_numbers, seed)
        count = self.count(part)
        read = self._reader(part)

        def one_epoch(epoch):
            return (
                tf.data.Dataset.from_tensor_slices(_epoch_order(count, seed, epoch))
                .batch(int(batch_size))
                .map(read)
            )

        dataset = tf.data.Dataset.range(first_epoch, epochs).flat_map(one_epoch).map(transform)
        return dataset.prefetch(tf.data.AUTOTUNE), -(-count // int(batch_size))

    def _distributed_passes(self, part, batch_size, transform, strategy, epochs, seed=None):
        """Passes over `part` under several workers: epochs in `(seed, epoch)` order; `[None]`: in order."""
        count = self.count(part)
        read = self._reader(part)
        per_replica = per_replica_size(batch_size, strategy)
        replicas = strategy.num_replicas_in_sync
        steps = global_steps(count, batch_size, strategy)

        def dataset_fn(context):
            def one_pass(epoch):
                order = tf.range(count, dtype=tf.int64) if epoch is None else _epoch_order(count, seed, epoch)
                rows = worker_rows(order, steps, per_replica, context, replicas)
                return tf.data.Dataset.from_tensor_slices(rows).batch(per_replica).map(read)

            data = functools.reduce(tf.data.Dataset.concatenate, [one_pass(epoch) for epoch in epochs])
            return data.map(transform).prefetch(tf.data.AUTOTUNE)

        return distribute_per_worker(strategy, dataset_fn), steps


def _epoch_order(count, seed, epoch):
    """Rows `0 .. count-1` in epoch `epoch`'s order (the permutation of `vqgen.data.epoch_batches`)."""
    return tf.random.experimental.stateless_shuffle(
        tf.range(count, dtype=tf.int64),
        seed=tf.stack([tf.constant(seed, tf.int64), tf.cast(epoch, tf.int64)]),
    )
