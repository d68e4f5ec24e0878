"""Hostile image files: a decompression bomb, a pixel limit, truncated and vanished files.

Every reader (the streamed folder's listing, the in-memory `load_images` folder, and the decoding
inside the `tf.data` pipeline for folders and TFDS) refuses an image of more than `max_image_pixels`
pixels from its header, with one line naming it and the option, and never decodes it. The bomb is a
hand-built 30000x30000 1-bit PNG of about 110 KB (900 MB once decoded), and a 23000x23000 one that
TensorFlow would still decode. Each bomb test runs the reader on both in one child process (the
command line: one process per bomb) and checks the child's peak resident memory.
"""

import os
import struct
import subprocess
import sys
import textwrap
import warnings
import zlib

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from vqgen.cli import main
from vqgen.data import load_images, stream_images
from vqgen.data.image_header import check_max_image_pixels, decode_within_limit, read_image_header
from vqgen.data.image_stream import naming_undecodable_files
from vqgen.settings import DATA_DEFAULTS

BOMB_SIDE = 30000
# The largest square TensorFlow's PNG decoder still decodes (it refuses width x height x 4 >= 2**31):
# 529 million pixels, so a reader that decoded it would be caught by the memory limit too.
DECODABLE_BOMB_SIDE = 23000
BOMB_SIDES = (BOMB_SIDE, DECODABLE_BOMB_SIDE)
PEAK_MEMORY_LIMIT = 1.5 * 2**30  # bytes
REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_bomb_png(path, side=BOMB_SIDE):
    """Writes a `side` x `side` all-black 1-bit gray PNG, compressing its rows one at a time."""
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # bit depth 1, gray, no interlace
    row = bytes(1 + -(-side // 8))  # filter byte 0, then the packed row
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    with open(path, "wb") as stream:
        stream.write(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header))
        stream.write(png_chunk(b"IDAT", data) + png_chunk(b"IEND", b""))
    return str(path)


def write_png(path, height, width, seed=0):
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, size=(height, width)).astype(np.uint8)
    Image.fromarray(pixels, "L").save(path)
    return str(path)


def bomb_folder(tmp_path, side):
    """A folder of two small digits-like PNGs and a `side` x `side` bomb, `bomb.png`."""
    folder = tmp_path / "images"
    write_png(folder / "a.png", 8, 8, seed=1)
    write_png(folder / "c.png", 8, 8, seed=2)
    write_bomb_png(folder / "bomb.png", side)
    return folder


def run_measured(arguments, cwd):
    """Runs `arguments` in a child process; returns `(exit code, stderr, peak resident bytes)`.

    A wrapper process runs the command as its only child and reads the child's peak resident set
    size with `resource.getrusage(RUSAGE_CHILDREN)` (kilobytes on Linux).
    """
    wrapper = textwrap.dedent(
        """
        import resource, subprocess, sys
        result = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        sys.stdout.write(f"{result.returncode} {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}\\n")
        sys.stdout.write(result.stderr)
        """
    )
    environment = {**os.environ, "PYTHONPATH": REPOSITORY}
    environment.pop("TF_CPP_MIN_LOG_LEVEL", None)  # `vqgen` hides TensorFlow's log itself
    output = subprocess.run(
        [sys.executable, "-c", wrapper, *arguments], capture_output=True, text=True, cwd=cwd, env=environment
    ).stdout
    first, _, stderr = output.partition("\n")
    code, peak_kilobytes = (int(value) for value in first.split())
    return code, stderr, peak_kilobytes * 1024


def python_child(script):
    return [sys.executable, "-c", textwrap.dedent(script)]


def test_the_bomb_is_small_on_disk_and_huge_in_its_header(tmp_path):
    path = write_bomb_png(tmp_path / "bomb.png")
    assert os.path.getsize(path) < 2**20
    with open(path, "rb") as stream:
        assert struct.unpack(">II", stream.read(24)[16:24]) == (BOMB_SIDE, BOMB_SIDE)


@pytest.mark.parametrize("side", BOMB_SIDES)
def test_vqgen_train_refuses_a_bomb_in_a_folder_in_one_line_without_decoding_it(tmp_path, side):
    folder = bomb_folder(tmp_path, side)
    run = tmp_path / "run"
    command = "import sys; from vqgen_command import main; sys.exit(main())"
    code, stderr, peak = run_measured(
        [sys.executable, "-c", command, "train", "--run", str(run), "--data", str(folder), "--quiet"],
        tmp_path,
    )
    lines = stderr.strip().splitlines()
    assert code == 2, stderr
    assert len(lines) == 1 and lines[0].startswith("vqgen: error:"), stderr
    assert "bomb.png" in lines[0] and "--max-image-pixels" in lines[0], lines[0]
    assert peak < PEAK_MEMORY_LIMIT, peak
    assert not (run / "config.json").exists()


def read_or_report(stream, side):
    """In a child: reads every batch of `stream` and writes `refused SIDE: MESSAGE` to stderr if it
    is refused."""
    try:
        with naming_undecodable_files(stream):
            for _ in stream.batches(2):
                pass
    except ValueError as error:
        print(f"refused {side}: {error}", file=sys.stderr)


def assert_both_refused(code, stderr, peak, named):
    """The child exited 0, wrote one refusal naming `named` and the option for each bomb, and stayed
    below the memory limit."""
    found = {}
    for line in stderr.splitlines():
        if line.startswith("refused "):
            side, _, message = line[len("refused ") :].partition(": ")
            found[int(side)] = message
    assert code == 0 and sorted(found) == sorted(BOMB_SIDES), stderr
    for message in found.values():
        assert named in message and "--max-image-pixels" in message, message
    assert peak < PEAK_MEMORY_LIMIT, peak


def test_load_images_refuses_a_bomb_in_a_folder_in_one_line_without_decoding_it(tmp_path):
    # Both bombs in one child process (one TensorFlow import); its peak memory covers both reads.
    folders = {side: str(bomb_folder(tmp_path / str(side), side)) for side in BOMB_SIDES}
    code, stderr, peak = run_measured(
        python_child(
            f"""
            import sys
            from vqgen.data import load_images
            for side, folder in {folders!r}.items():
                try:
                    load_images(folder)
                except ValueError as error:
                    print(f"refused {{side}}: {{error}}", file=sys.stderr)
            """
        ),
        tmp_path,
    )
    assert_both_refused(code, stderr, peak, "bomb.png")


def test_the_pipeline_refuses_a_bomb_that_replaced_a_listed_file_without_decoding_it(tmp_path):
    folders = {}
    for side in BOMB_SIDES:
        folders[side] = str(tmp_path / str(side))
        for name in ("a.png", "b.png", "c.png"):
            write_png(tmp_path / str(side) / name, 8, 8, seed=len(name))
    code, stderr, peak = run_measured(
        python_child(
            f"""
            import os, sys
            sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})
            from test_data_image_header import read_or_report, write_bomb_png
            from vqgen.data import stream_images

            for side, folder in {folders!r}.items():
                stream = stream_images(folder)  # listed while b.png was a small image
                write_bomb_png(os.path.join(folder, "b.png"), side)
                read_or_report(stream, side)
            """
        ),
        tmp_path,
    )
    assert_both_refused(code, stderr, peak, "b.png")


def test_a_tfds_stream_refuses_a_bomb_among_its_encoded_images_without_decoding_it(tmp_path):
    code, stderr, peak = run_measured(
        python_child(
            f"""
            import sys
            import numpy as np
            import tensorflow as tf
            import tensorflow_datasets as tfds
            sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})
            from test_data_image_header import read_or_report, write_bomb_png
            from vqgen.data import stream_images

            small = tf.io.encode_png(np.zeros((28, 28, 1), np.uint8)).numpy()
            for side in {list(BOMB_SIDES)!r}:
                with open(write_bomb_png({str(tmp_path / "bomb.png")!r}, side), "rb") as stream:
                    bomb = stream.read()

                def as_dataset(self, *args, **kwargs):  # encoded images, as TFDS stores them
                    assert "image" in kwargs["decoders"]  # the images reach vqgen undecoded
                    images = [small, small, bomb, small]
                    labels = np.zeros(4, np.int64)
                    return tf.data.Dataset.from_tensor_slices({{"image": images, "label": labels}})

                with tfds.testing.mock_data(num_examples=4, as_dataset_fn=as_dataset):
                    read_or_report(stream_images("tfds:mnist"), side)
            """
        ),
        tmp_path,
    )
    assert_both_refused(code, stderr, peak, "example 2 of tfds:mnist")


def test_every_reader_applies_the_max_image_pixels_option(tmp_path, capsys):
    folder = tmp_path / "images"
    write_png(folder / "small.png", 8, 8)
    write_png(folder / "wide.png", 8, 12, seed=1)
    expected = (
        r"'.*wide\.png' is 8x12 = 96 pixels, above the limit of 80 pixels per image.*--max-image-pixels"
    )
    with pytest.raises(ValueError, match=expected):
        load_images(str(folder), max_image_pixels=80)
    with pytest.raises(ValueError, match=expected):
        stream_images(str(folder), image_size=8, max_image_pixels=80)
    with pytest.raises(SystemExit) as exit_status:
        main(["train", "--run", str(tmp_path / "run"), "--data", str(folder), "--max-image-pixels", "80"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert exit_status.value.code == 2 and len(lines) == 1 and "wide.png" in lines[0], lines
    assert "--max-image-pixels" in lines[0]
    # At the limit an image is read.
    pixels = np.asarray(Image.open(folder / "wide.png"))
    assert stream_images(str(folder), image_size=8, max_image_pixels=96).to_image_set().images.shape[0] == 2
    with pytest.raises(ValueError, match="max_image_pixels must be a positive integer"):
        check_max_image_pixels(0)
    encoded = tf.constant((folder / "wide.png").read_bytes())
    np.testing.assert_array_equal(decode_within_limit(encoded, "wide.png", 96).numpy()[..., 0], pixels)
    with pytest.raises(tf.errors.InvalidArgumentError, match="wide.png has more than 95 pixels"):
        decode_within_limit(encoded, "wide.png", 95)


def test_the_default_limit_is_pillows_and_reads_the_header_only(tmp_path):
    assert DATA_DEFAULTS.max_image_pixels == Image.MAX_IMAGE_PIXELS
    header = read_image_header(write_png(tmp_path / "a.png", 5, 7), "a.png", 35)
    assert (header.format, header.mode, header.height, header.width) == ("PNG", "L", 5, 7)
    # Between Pillow's warning and its error: refused by the limit, with its size, and no warning.
    large = write_bomb_png(tmp_path / "large.png", side=10000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(
            ValueError, match=r"is 10000x10000 = 100,000,000 pixels, above the limit of 89,478,485"
        ):
            read_image_header(large, "large.png", DATA_DEFAULTS.max_image_pixels)
    assert read_image_header(large, "large.png", 10**8).height == 10000


def truncated(path):
    data = open(path, "rb").read()
    with open(path, "wb") as stream:
        stream.write(data[: len(data) - 40])  # the header reads, the pixels do not
    return path


@pytest.mark.parametrize("extension", ["png", "jpg"])
def test_a_truncated_image_is_named_in_one_line_by_every_reader(tmp_path, capsys, extension):
    folder = tmp_path / "images"
    folder.mkdir()
    pixels = np.random.default_rng(0).integers(0, 256, size=(16, 16, 3)).astype(np.uint8)
    for name in ("a", "b", "c"):
        Image.fromarray(pixels).save(folder / f"{name}.{extension}")
    truncated(folder / f"b.{extension}")
    expected = rf"cannot decode '.*b\.{extension}'"
    with pytest.raises(ValueError, match=expected):
        load_images(str(folder))
    stream = stream_images(str(folder))
    with pytest.raises(ValueError, match=expected):
        with naming_undecodable_files(stream):
            list(stream.batches(2))
    with pytest.raises(SystemExit) as exit_status:
        main(["train", "--run", str(tmp_path / "run"), "--data", str(folder), "--quiet", "--epochs", "1"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert exit_status.value.code == 2 and len(lines) == 1, lines
    assert lines[0].startswith("vqgen: error: cannot decode") and f"b.{extension}" in lines[0], lines


def test_a_file_removed_after_the_listing_is_named_in_one_line(tmp_path):
    folder = tmp_path / "images"
    for name in ("a.png", "b.png", "c.png"):
        write_png(folder / name, 8, 8, seed=len(name))
    stream = stream_images(str(folder))
    os.remove(folder / "b.png")
    with pytest.raises(ValueError, match=r"cannot read '.*b\.png' \(No such file or directory\)"):
        with naming_undecodable_files(stream):
            list(stream.batches(2))


def test_a_file_that_is_not_an_image_is_named_by_both_folder_readers(tmp_path):
    folder = tmp_path / "images"
    write_png(folder / "a.png", 8, 8)
    (folder / "notes.png").write_bytes(b"these are notes, not an image")
    for read in (load_images, stream_images):
        with pytest.raises(ValueError, match=r"cannot decode '.*notes\.png' as an image"):
            read(str(folder))
