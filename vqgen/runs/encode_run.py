"""`encode_run`: codes a dataset with a run's stage 1 and writes the codes out for downstream models.

Layout of the output folder (any path `tf.io.gfile` knows: local, `gs://`, `ram://`, ...):

    codes-00000-of-00003.tfrecord ...   `tf.train.Example`s (see `CODES_FEATURES`), or with npy:
    codes-00000-of-00003.npy ...        int32 codes `[n, h, w]` (`[n, h, w, d]` for residual VQ)
    labels-00000-of-00003.npy ...       int32 labels `[n]` (only when the source has labels)
    index-00000-of-00003.npy ...        int64 positions of the images in the source
    progress.json                       while unfinished: the manifest so far, its shards done
    manifest.json                       written last: the stage-1 hash, shapes, K, count, shards

Each shard is written under a temporary name and renamed once complete, then recorded in
`progress.json`; a re-run of the same command skips the recorded shards. `manifest.json` appears
only when every shard is in place, so a reader can tell a complete output by it, also on storage
whose renames are not atomic.
"""

import json
import posixpath
import re

import keras
import numpy as np
import tensorflow as tf

from vqgen.data import stream_images
from vqgen.data.image_stream import naming_undecodable_files
from vqgen.runs.code_shards import file_hash, npy_bytes
from vqgen.runs.model_files import load_stage_model
from vqgen.runs.run_folder import RunFolder
from vqgen.settings import DATA_DEFAULTS, ENCODE_DEFAULTS
from vqgen.storage import temporary_name_beside

MANIFEST = "manifest.json"
PROGRESS = "progress.json"
# A file being written: `.NAME.<8 hex digits>.tmp` beside its final NAME.
TEMPORARY_NAME = re.compile(r"^\..+\.[0-9a-f]{8}\.tmp$")
# The features of one TFRecord example: the flattened codes, their shape (h, w[, d]), the image's
# position in the source and (when the source has labels) its label.
CODES_FEATURES = {
    "codes": tf.io.VarLenFeature(tf.int64),
    "shape": tf.io.VarLenFeature(tf.int64),
    "index": tf.io.FixedLenFeature([], tf.int64),
    "label": tf.io.FixedLenFeature([], tf.int64, default_value=-1),
}


def _write_atomically(path, data):
    """Writes `data` under a temporary name beside `path`, then renames it onto `path`."""
    temporary = temporary_name_beside(path)
    with tf.io.gfile.GFile(temporary, "wb") as stream:
        stream.write(data)
    tf.io.gfile.rename(temporary, path, overwrite=True)


def _read_json(path):
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path, "r") as stream:
        return json.load(stream)


def _example(grid, index, label):
    """One image's `tf.train.Example` (see `CODES_FEATURES`); `label` None: left out."""
    feature = {
        "codes": tf.train.Feature(int64_list=tf.train.Int64List(value=grid.ravel().tolist())),
        "shape": tf.train.Feature(int64_list=tf.train.Int64List(value=list(grid.shape))),
        "index": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(index)])),
    }
    if label is not None:
        feature["label"] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(label)]))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def _write_shard(out, name, file_format, codes, labels, indices):
    """Writes one shard (its files under temporary names, then renamed); returns its file names."""
    if file_format == "tfrecord":
        path = posixpath.join(out, f"{name}.tfrecord")
        temporary = temporary_name_beside(path)
        with tf.io.TFRecordWriter(temporary) as writer:
            for row, (grid, index) in enumerate(zip(codes, indices)):
                writer.write(_example(grid, index, None if labels is None else labels[row]))
        tf.io.gfile.rename(temporary, path, overwrite=True)
        return [posixpath.basename(path)]
    arrays = {"codes": codes, "index": indices.astype(np.int64)}
    if labels is not None:
        arrays["labels"] = labels.astype(np.int32)
    names = []
    for kind, array in arrays.items():
        names.append(f"{kind}{name[len('codes') :]}.npy")
        _write_atomically(posixpath.join(out, names[-1]), npy_bytes(array))
    return names


def _check_output(out, overwrite, expected):
    """Clears `out` when asked; returns the shards recorded by an unfinished encoding of the same kind.

    Raises:
        FileExistsError: `out` holds a finished encoding, another encoding's progress or other files.
    """
    if overwrite and tf.io.gfile.exists(out):
        tf.io.gfile.rmtree(out)
    if not tf.io.gfile.exists(out):
        return {}
    progress = _read_json(posixpath.join(out, PROGRESS))
    if progress is not None and not tf.io.gfile.exists(posixpath.join(out, MANIFEST)):
        if {key: progress.get(key) for key in expected} == expected:
            for name in tf.io.gfile.listdir(out):  # what a killed run was writing
                if TEMPORARY_NAME.match(name):
                    tf.io.gfile.remove(posixpath.join(out, name))
            return {int(index): shard for index, shard in progress["shards"].items()}
    raise FileExistsError(
        f"{out} already exists; choose another --out, or pass --overwrite to replace it "
        "(an interrupted `vqgen encode` resumes when run again with the same options)."
    )


def encode_run(
    run_path,
    source,
    out,
    file_format=ENCODE_DEFAULTS.format,
    shard_size=ENCODE_DEFAULTS.shard_size,
    batch_size=ENCODE_DEFAULTS.batch_size,
    overwrite=False,
    verbose=1,
):
    """Codes every image of `source` with the run's stage 1 and writes the codes as shards to `out`.

    The images are converted as the run's were (its `image_size` and `channels`), read and coded
    `batch_size` at a time and written `shard_size` at a time, so memory stays bounded by a shard.
    An interrupted encoding resumes from its last complete shard when run again with the same options.

    Args:
        run_path: str. A run folder with a trained VQ-VAE (stays local: only read).
        source: str. Any source `--data` accepts (see `vqgen.data.stream_images`).
        out: str. The output folder; any `tf.io.gfile` path (`gs://...`, `ram://...`).
        file_format: "tfrecord" (`tf.train.Example`s, see `CODES_FEATURES`) or "npy".
        shard_size: int >= 1. Images per shard.
        batch_size: int >= 1. Images coded at once.
        overwrite: bool. Replace an existing `out`.
        verbose: int. 1 shows a progress bar.

    Returns:
        dict, the manifest written to `out/manifest.json`: `stage1_sha256` (of vqvae.keras),
        `grid_shape` `[h, w]`, `code_depth` d, `num_embeddings` K, `code_shape`, `num_examples`,
        `has_labels`, `format`, `shard_size`, `source` and `shards` (file names and counts).

    Raises:
        FileNotFoundError: the run has no trained VQ-VAE, or the source is missing.
        FileExistsError: `out` exists (a finished encoding or other files) and `overwrite` is False.
        ValueError: a bad format or size, or a source whose images differ from the run's.

    Example:
    >>> manifest = encode_run("runs/digits", "digits", "codes/digits")  # doctest: +SKIP
    >>> records = tf.data.TFRecordDataset(tf.io.gfile.glob("codes/digits/codes-*.tfrecord"))  # doctest: +SKIP
    >>> examples = records.map(lambda r: tf.io.parse_single_example(r, CODES_FEATURES))  # doctest: +SKIP
    """
    if file_format not in ("tfrecord", "npy"):
        raise ValueError(f"--format must be tfrecord or npy. Received: {file_format}")
    for name, value in (("--shard-size", shard_size), ("--batch-size", batch_size)):
        if int(value) < 1:
            raise ValueError(f"{name} must be a positive integer. Received: {value}")
    run = RunFolder(run_path)
    vqvae = load_stage_model(run, "vqvae")
    data = run.read_config()["data"]
    images = stream_images(
        source,
        image_size=data.get("image_size"),
        channels=data.get("channels"),
        max_image_pixels=data.get("max_image_pixels", DATA_DEFAULTS.max_image_pixels),
        tfrecord_image_key=data.get("tfrecord_image_key", DATA_DEFAULTS.tfrecord_image_key),
        tfrecord_label_key=data.get("tfrecord_label_key", DATA_DEFAULTS.tfrecord_label_key),
        verbose=verbose,
    )
    if tuple(images.image_shape) != tuple(vqvae.image_shape):
        raise ValueError(
            f"{source} has images of shape {tuple(images.image_shape)} but the run's VQ-VAE takes "
            f"{tuple(vqvae.image_shape)}; use a source of that shape (the run's --image-size and "
            "--channels are applied)"
        )
    count = len(images)
    if count == 0:
        raise ValueError(f"{source} holds no images; give a source with at least one image")
    num_shards = -(-count // shard_size)
    manifest = {
        "format": file_format,
        "source": str(source),
        "stage1_sha256": file_hash(run.model_path("vqvae")),
        "grid_shape": list(vqvae.grid_shape),
        "code_depth": int(vqvae.code_depth),
        "num_embeddings": int(vqvae.num_embeddings),
        "code_shape": list(vqvae.code_shape),
        "num_examples": count,
        "has_labels": bool(images.has_labels),
        "shard_size": int(shard_size),
    }
    done = _check_output(out, overwrite, manifest)
    tf.io.gfile.makedirs(out)
    progress = keras.utils.Progbar(count, unit_name="image") if verbose else None
    if progress is not None:
        print(f"Coding {count:,} images of {source} into {num_shards} {file_format} shards")
        progress.update(sum(shard["count"] for shard in done.values()))
    with naming_undecodable_files(images):
        for index in range(num_shards):
            if index in done:
                continue
            start, stop = index * shard_size, min(count, (index + 1) * shard_size)
            codes, labels = [], []
            for batch in images.slice(start, stop).batches(batch_size, with_labels=images.has_labels):
                pixels, batch_labels = batch if images.has_labels else (batch, None)
                codes.append(np.asarray(vqvae.encode(pixels), np.int32))
                if batch_labels is not None:
                    labels.append(np.asarray(batch_labels, np.int32))
                if progress is not None:
                    progress.add(len(codes[-1]))
            codes = np.concatenate(codes)  # a shard holds at least one image
            labels = np.concatenate(labels) if images.has_labels else None
            name = f"codes-{index:05d}-of-{num_shards:05d}"
            files = _write_shard(
                out, name, file_format, codes, labels, np.arange(start, stop, dtype=np.int64)
            )
            done[index] = {"files": files, "count": len(codes), "first_index": start}
            shards = {str(key): value for key, value in sorted(done.items())}
            _write_atomically(
                posixpath.join(out, PROGRESS), json.dumps({**manifest, "shards": shards}).encode()
            )
    manifest["shards"] = [done[index] for index in range(num_shards)]
    _write_atomically(posixpath.join(out, MANIFEST), json.dumps(manifest, indent=1).encode())
    tf.io.gfile.remove(posixpath.join(out, PROGRESS))
    return manifest
