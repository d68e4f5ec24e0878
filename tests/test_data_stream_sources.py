"""stream_images: image folders of mixed formats, memory-mapped .npy, TFDS as a stream, bad input."""

import hashlib
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

from vqgen.cli import main
from vqgen.data import ImageStream, load_images, stream_images
from vqgen.data.image_stream import naming_undecodable_files


def write_image(path, pixels, mode=None, **options):
    """Saves uint8 `pixels` ([H, W] or [H, W, C]) with PIL; the format comes from the extension."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(pixels, mode).save(path, **options)
    return path


def random_pixels(shape, seed):
    return np.random.default_rng(seed).integers(0, 256, size=shape).astype(np.uint8)


def flat(pixels):
    """PIL reference of an image's RGB pixels with alpha composited on white."""
    rgba = Image.open(pixels).convert("RGBA")
    return np.asarray(Image.alpha_composite(Image.new("RGBA", rgba.size, (255,) * 4), rgba).convert("RGB"))


def served(stream, with_labels=False):
    """Every image (uint8) and label of a stream in source order."""
    images, labels = [], []
    for batch in stream.batches(4, with_labels=with_labels):
        pixels, batch_labels = batch if with_labels else (batch, None)
        images.append(np.rint(pixels.numpy() * 255).astype(np.uint8))
        if batch_labels is not None:
            labels.extend(batch_labels.numpy().tolist())
    return np.concatenate(images), labels


def folder_hashes(folder):
    result = {}
    for root, _, files in os.walk(folder):
        for name in files:
            with open(os.path.join(root, name), "rb") as stream:
                result[os.path.join(root, name)] = hashlib.sha256(stream.read()).hexdigest()
    return result


def test_a_folder_of_mixed_formats_and_modes_streams_as_rgb_with_class_labels(tmp_path):
    lossless = {
        "cat/a.png": (random_pixels((12, 12, 4), 1), "RGBA"),  # alpha composited on white
        "cat/b.bmp": (random_pixels((12, 12, 3), 2), "RGB"),
        "dog/c.png": (random_pixels((12, 12), 3), "L"),  # gray becomes RGB
        "dog/d.gif": (random_pixels((12, 12, 3), 4), "RGB"),  # saved with a palette, first frame
        "dog/e.webp": (random_pixels((12, 12, 3), 5), "RGB"),
    }
    for name, (pixels, mode) in lossless.items():
        if name.endswith("gif"):
            Image.fromarray(pixels).quantize(16).save(tmp_path / name)  # a 16-colour palette image
            continue
        write_image(
            str(tmp_path / name), pixels, mode, **({"lossless": True} if name.endswith("webp") else {})
        )
    ramp = np.linspace(0, 255, 12 * 12 * 3).reshape(12, 12, 3).astype(np.uint8)  # smooth: JPEG-friendly
    write_image(str(tmp_path / "dog" / "f.jpg"), ramp, "RGB", quality=95)
    stream = stream_images(str(tmp_path))
    assert isinstance(stream, ImageStream) and stream.image_set is None  # streamed, not loaded
    assert stream.image_shape == (12, 12, 3) and stream.num_classes == 2 and len(stream) == 6
    images, labels = served(stream, with_labels=True)
    assert labels == [0, 0, 1, 1, 1, 1]
    names = ["cat/a.png", "cat/b.bmp", "dog/c.png", "dog/d.gif", "dog/e.webp"]
    for index, name in enumerate(names):
        difference = np.abs(images[index].astype(int) - flat(str(tmp_path / name)))
        assert difference.max() <= 1, name
    jpeg = (tmp_path / "dog" / "f.jpg").read_bytes()  # JPEG decoders differ: TensorFlow's is the reference
    np.testing.assert_array_equal(images[5], tf.io.decode_jpeg(jpeg).numpy())
    assert np.abs(images[5].astype(int) - flat(str(tmp_path / "dog" / "f.jpg"))).mean() < 4


def test_image_size_and_channels_resize_crop_and_convert_on_the_fly(tmp_path):
    write_image(str(tmp_path / "wide.png"), random_pixels((20, 40, 3), 7))
    write_image(str(tmp_path / "tall.png"), random_pixels((30, 10), 8), "L")
    stream = stream_images(str(tmp_path), image_size=(8, 8), channels=1)
    assert stream.image_shape == (8, 8, 1) and stream.num_classes is None
    images, _ = served(stream)
    tall = np.asarray(Image.open(tmp_path / "tall.png").resize((8, 24), Image.BILINEAR))[8:16]
    assert np.abs(images[0, ..., 0].astype(int) - tall).max() <= 1  # sorted: tall.png first
    wide = Image.open(tmp_path / "wide.png").convert("L").resize((16, 8), Image.BILINEAR)
    assert np.abs(images[1, ..., 0].astype(int) - np.asarray(wide)[:, 4:12]).max() <= 2


def test_mixed_sizes_without_image_size_suggest_the_option(tmp_path):
    write_image(str(tmp_path / "a.png"), random_pixels((8, 8), 1))
    write_image(str(tmp_path / "b.png"), random_pixels((8, 6), 2))
    with pytest.raises(
        ValueError, match=r"differ in size: 'a.png' is 8x8 but 'b.png' is 8x6; pass --image-size"
    ):
        stream_images(str(tmp_path))


def test_npy_files_are_memory_mapped(tmp_path):
    pixels = random_pixels((10, 4, 4, 3), 9)
    np.save(tmp_path / "images.npy", pixels)
    stream = stream_images(str(tmp_path / "images.npy"))
    assert stream.image_set is None and stream.image_shape == (4, 4, 3)
    np.testing.assert_array_equal(served(stream)[0], pixels)
    floats = stream_images(str(tmp_path / "images.npy").replace("images", "images"), channels=1)
    assert floats.image_shape == (4, 4, 1)


def test_a_tfds_split_streams_without_being_copied_into_numpy(tmp_path, monkeypatch):
    with tfds.testing.mock_data(num_examples=12):
        reference = list(tfds.as_numpy(tfds.load("mnist", split="train", data_dir=str(tmp_path))))

        def refuse(*args, **kwargs):
            raise AssertionError("the split was materialised")

        monkeypatch.setattr(tfds, "as_numpy", refuse)  # what copying the whole split went through
        stream = stream_images("tfds:mnist", data_dir=str(tmp_path), shuffle_buffer=4)
        assert stream.image_set is None and len(stream) == 12 and stream.num_classes == 10
        images, labels = [], []
        for pixels, batch_labels in stream.batches(5, with_labels=True):
            images.extend(np.rint(pixels.numpy() * 255).astype(np.uint8))
            labels.extend(batch_labels.numpy().tolist())
        train, _ = stream.split(0.25, seed=0)  # shuffled through a bounded buffer, resumable
        everything, steps = train.epoch_batches(4, seed=1, first_epoch=0, epochs=2)
        resumed, _ = train.epoch_batches(4, seed=1, first_epoch=1, epochs=2)
        uninterrupted = [batch.numpy() for batch in everything]
        assert len(uninterrupted) == 2 * steps
        for expected, served_again in zip(uninterrupted[steps:], resumed):
            np.testing.assert_array_equal(served_again.numpy(), expected)
    np.testing.assert_array_equal(np.stack(images), np.stack([ex["image"] for ex in reference]))
    assert labels == [int(ex["label"]) for ex in reference]


def test_in_memory_sources_keep_their_arrays_and_order():
    digits = load_images("digits")
    stream = stream_images("digits")
    assert stream.image_set is not None
    np.testing.assert_array_equal(stream.image_set.images, digits.images)


def bad_folders(tmp_path):
    """(name, --data folder, extra options, words expected in the one-line error)."""
    undecodable = tmp_path / "undecodable"
    write_image(str(undecodable / "good.png"), random_pixels((8, 8), 1))
    (undecodable / "broken.png").write_bytes(b"not an image at all")
    empty_class = tmp_path / "empty_class"
    write_image(str(empty_class / "cats" / "a.png"), random_pixels((8, 8), 2))
    os.makedirs(empty_class / "dogs")
    sizes = tmp_path / "sizes"
    write_image(str(sizes / "a.png"), random_pixels((8, 8), 3))
    write_image(str(sizes / "b.png"), random_pixels((12, 8), 4))
    return [
        ("undecodable file", undecodable, [], "broken.png"),
        ("empty class folder", empty_class, [], "dogs"),
        ("mixed sizes", sizes, [], "--image-size"),
        ("size not divisible", sizes, ["--image-size", "10"], "not divisible by --downsample 4"),
    ]


def test_bad_folders_and_options_give_one_line_and_exit_2_with_files_untouched(tmp_path, capsys):
    for name, folder, options, expected in bad_folders(tmp_path):
        before = folder_hashes(folder)
        run = tmp_path / f"run_{name.replace(' ', '_')}"
        with pytest.raises(SystemExit) as exit_status:
            main(["train", "--run", str(run), "--data", str(folder), "--quiet", *options])
        code = exit_status.value.code
        lines = capsys.readouterr().err.strip().splitlines()
        assert code == 2, name
        assert len(lines) == 1 and lines[0].startswith("vqgen: error:") and expected in lines[0], (
            name,
            lines,
        )
        assert folder_hashes(folder) == before, name
        assert not os.path.exists(run / "config.json"), name
    with pytest.raises(SystemExit) as exit_status:
        main(["train", "--run", str(tmp_path / "run"), "--channels", "2"])
    assert exit_status.value.code == 2
    assert "argument --channels: invalid choice: 2" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_status:
        main(["train", "--run", str(tmp_path / "run"), "--image-size", "64x0"])
    assert exit_status.value.code == 2
    assert "argument --image-size: image size must be H or HxW" in capsys.readouterr().err


def test_a_file_that_fails_only_in_the_decoder_is_named(tmp_path):
    for index in range(3):
        write_image(str(tmp_path / f"{index}.png"), random_pixels((8, 8), index))
    data = (tmp_path / "1.png").read_bytes()
    (tmp_path / "1.png").write_bytes(data[: len(data) - 30])  # the header reads, the pixels do not
    stream = stream_images(str(tmp_path))
    with pytest.raises(ValueError, match=r"cannot decode '.*1\.png'"):
        with naming_undecodable_files(stream):
            served(stream)


def test_workers_shares_of_a_tfds_split_are_disjoint_and_make_up_each_part(tmp_path):
    # Under several workers a sequence source is shared out by example: worker i of n reads shard(n, i).
    def images(stream):
        return [np.rint(batch.numpy() * 255).astype(np.uint8).tobytes() for batch in stream.batches(1)]

    with tfds.testing.mock_data(num_examples=12):
        stream = stream_images("tfds:mnist", data_dir=str(tmp_path), shuffle_buffer=4)
        for part in stream.split(0.25, seed=0):
            whole = images(part)
            first, second = (images(part.shard(2, index)) for index in range(2))
            assert len(first) + len(second) == len(whole) and abs(len(first) - len(second)) <= 1
            assert sorted(first + second) == sorted(whole)  # each example read by exactly one worker
            assert first == whole[0::2] and second == whole[1::2]  # every other example, in order
