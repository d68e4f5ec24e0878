"""vqgen.runs.sample_images beyond plain sampling: --guidance, and --inpaint/--region (the cells a pixel
box overlaps against a brute-force count, the codes outside the box kept, the written image decoded
from the written codes, one-line errors that leave every file alone), and --label-dropout at training."""

import hashlib
import json
import os
import re

import numpy as np
import pytest
import tensorflow as tf

from prior.registry import PRIORS
from vqgen.cli import main
from vqgen.runs.model_files import load_stage_model
from vqgen.runs.run_folder import RunFolder
from vqgen.runs.sample_images import labels_by_class, parse_region, region_cells, sample_images
from vqgen.settings import GUIDANCE_BY_PRIOR

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def brute_force_cells(region, image_shape, grid_shape):
    """Marks cell (r, c) when any pixel of the box falls inside it, pixel by pixel."""
    y0, x0, y1, x1 = region
    cell_height, cell_width = image_shape[0] // grid_shape[0], image_shape[1] // grid_shape[1]
    cells = np.zeros(grid_shape, bool)
    for y in range(y0, y1):
        for x in range(x0, x1):
            cells[y // cell_height, x // cell_width] = True
    return cells


def test_region_cells_match_a_pixel_by_pixel_count():
    generator = np.random.default_rng(0)
    for _ in range(200):
        y0, y1 = sorted(generator.choice(29, 2, replace=False))
        x0, x1 = sorted(generator.choice(29, 2, replace=False))
        for grid in ((7, 7), (14, 14), (4, 7)):
            expected = brute_force_cells((y0, x0, y1, x1), (28, 28, 1), grid)
            np.testing.assert_array_equal(region_cells((y0, x0, y1, x1), (28, 28, 1), grid), expected)


@pytest.mark.parametrize(
    "region, message",
    [
        ((3, 0, 3, 5), "is empty"),
        ((0, 5, 4, 2), "is empty"),
        ((0, 0, 29, 5), "outside"),
        ((-1, 0, 4, 4), "outside"),
    ],
)
def test_region_cells_refuse_empty_and_outside_boxes(region, message):
    with pytest.raises(ValueError, match=message):
        region_cells(region, (28, 28, 1), (7, 7))


def test_parse_region():
    assert parse_region("1, 2,3,4") == (1, 2, 3, 4)
    for text in ("1,2,3", "a,b,c,d", "1,2,3,4,5", ""):
        with pytest.raises(ValueError, match="y0,x0,y1,x1"):
            parse_region(text)


def run_cli(args, capsys):
    try:
        code = main(args)
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def folder_hashes(*paths):
    result = {}
    for path in paths:
        walk = (
            os.walk(path) if os.path.isdir(path) else [(os.path.dirname(path), [], [os.path.basename(path)])]
        )
        for root, _, files in walk:
            for name in files:
                with open(os.path.join(root, name), "rb") as stream:
                    result[os.path.join(root, name)] = hashlib.sha256(stream.read()).hexdigest()
    return result


@pytest.fixture(scope="module")
def digit_png(tmp_path_factory, tiny_digits):
    """A 28x28 gray PNG of the first tiny digit, its pixels and its label."""
    with np.load(tiny_digits) as arrays:
        pixels, label = arrays["images"][0], int(arrays["labels"][0])
    pixels = pixels.reshape(28, 28, 1).astype(np.uint8)
    path = str(tmp_path_factory.mktemp("images") / "digit.png")
    tf.io.write_file(path, tf.io.encode_png(pixels))
    return path, pixels, label


@pytest.mark.slow
def test_inpaint_keeps_the_codes_outside_the_region_and_writes_their_decoding(
    tiny_run, digit_png, tmp_path, capsys
):
    image, pixels, label = digit_png
    out = str(tmp_path / "inpainted.png")
    args = ["sample", "--run", tiny_run, "--inpaint", image, "--region", "0,0,10,28", "-n", "3"]
    code, _, stderr = run_cli([*args, "--label", str(label), "--seed", "1", "--out", out], capsys)
    assert code == 0, stderr
    vqvae = load_stage_model(RunFolder(tiny_run), "vqvae")
    original = vqvae.encode(pixels[None])[0]  # (7, 7)
    codes = np.load(out[:-4] + ".npy")
    assert codes.shape == (3, 7, 7)
    # Rows 0-2 of cells overlap pixel rows 0-9; every other code is the image's own
    np.testing.assert_array_equal(codes[:, 3:], np.broadcast_to(original[3:], (3, 4, 7)))
    # The PNG holds the decoded completions, one tile per completion (rows of 8, 2 pixels apart)
    written = tf.io.decode_png(tf.io.read_file(out)).numpy().astype(np.float32) / 255
    decoded = vqvae.decode(codes)
    for index in range(3):
        tile = written[2 : 2 + 28, 2 + 30 * index : 2 + 30 * index + 28, :1]
        np.testing.assert_allclose(tile, decoded[index], atol=1 / 255 + 1e-6)


def test_the_default_scales_are_the_picks_of_the_guidance_measurement():
    """GUIDANCE_BY_PRIOR holds the last table of benchmarks/results/compare_guidance.md, every prior's."""
    results = os.path.join(REPOSITORY, "benchmarks", "results", "compare_guidance.md")
    with open(results, encoding="utf-8") as stream:
        picked = stream.read().split("Picked scales")[1]
    rows = re.findall(r"^\| (\w+) \| ([0-9.]+) \|", picked, flags=re.MULTILINE)
    assert {kind: float(scale) for kind, scale in rows} == GUIDANCE_BY_PRIOR
    assert set(GUIDANCE_BY_PRIOR) == set(PRIORS)


@pytest.mark.slow
def test_guidance_1_is_plain_sampling_and_the_default_is_the_measured_scale(tiny_run, tmp_path, capsys):
    common = ["sample", "--run", tiny_run, "-n", "4", "--label", "2", "--seed", "3"]
    measured = GUIDANCE_BY_PRIOR["pixelcnn"]  # the run's PixelCNN was trained with label dropout
    options = {"default": [], "one": ["--guidance", "1"], "measured": ["--guidance", str(measured)]}
    codes = {}
    for name, extra in options.items():
        out = str(tmp_path / f"{name}.png")
        assert run_cli([*common, *extra, "--out", out], capsys)[0] == 0
        codes[name] = np.load(out[:-4] + ".npy")
    prior_model = load_stage_model(RunFolder(tiny_run), "prior")
    plain = prior_model.sample(4, labels=[2] * 4, seed=3)  # the prior's own default: no guidance
    np.testing.assert_array_equal(codes["one"], plain)
    np.testing.assert_array_equal(codes["default"], codes["measured"])
    assert measured != 1 and not np.array_equal(codes["default"], plain)


@pytest.mark.slow
def test_bad_inpainting_guidance_and_label_dropout_exit_2_with_one_line(
    tiny_run, digit_png, tmp_path, capsys
):
    image, pixels, _ = digit_png
    small = str(tmp_path / "small.png")
    tf.io.write_file(small, tf.io.encode_png(pixels[:14, :14]))
    colour = str(tmp_path / "colour.png")
    tf.io.write_file(colour, tf.io.encode_png(np.repeat(pixels, 3, axis=-1)))
    out = str(tmp_path / "x.png")
    inpaint = ["sample", "--run", tiny_run, "--inpaint", image, "--label", "1", "--out", out, "-n", "1"]
    cases = [
        ([*inpaint, "--region", "0,0,40,10"], "outside the 28x28 image"),
        ([*inpaint, "--region", "5,0,5,10"], "is empty"),
        ([*inpaint, "--region", "5,0,5"], "y0,x0,y1,x1"),
        (inpaint, "go together"),
        ([*inpaint[:4], small, *inpaint[5:], "--region", "0,0,4,4"], "14x14x1"),
        ([*inpaint[:4], colour, *inpaint[5:], "--region", "0,0,4,4"], "28x28x3"),
        ([*inpaint[:4], str(tmp_path / "none.png"), *inpaint[5:], "--region", "0,0,4,4"], "none.png"),
        ([*inpaint[:5], *inpaint[7:], "--region", "0,0,4,4"], "--label"),
        ([*inpaint, "--region", "0,0,4,4", "--guidance", "-1"], "guidance must be a finite number >= 0"),
        (["sample", "--run", tiny_run, "--label", "1", "--guidance", "nan", "--out", out], "guidance"),
        (["train-prior", "--run", tiny_run, "--overwrite", "--label-dropout", "0.2"], "--conditional"),
    ]
    for args, message in cases:
        before = folder_hashes(tiny_run, image, small, colour)
        code, _, stderr = run_cli(args, capsys)
        lines = stderr.strip().splitlines()
        assert code == 2 and len(lines) == 1 and message in lines[0], (args, stderr)
        assert folder_hashes(tiny_run, image, small, colour) == before, args
        assert not os.path.exists(out), args


def test_conditional_workflow_prior_records_its_label_dropout(tiny_run):
    config = json.loads(open(os.path.join(tiny_run, "config.json")).read())
    prior_model = load_stage_model(RunFolder(tiny_run), "prior")
    assert config["prior"]["label_dropout"] == prior_model.label_dropout > 0
    assert prior_model.supports_guidance


@pytest.mark.parametrize("num", [1, 4, 10, 20, 23, 64])
@pytest.mark.parametrize("num_classes", [1, 3, 10])
def test_labels_by_class_spread_evenly_in_class_order(num, num_classes):
    labels, row_lengths = labels_by_class(num, num_classes)
    counts = np.bincount(labels, minlength=num_classes)
    assert len(labels) == num and list(labels) == sorted(labels)
    assert counts.max() - counts.min() <= 1  # as even as num allows
    assert all(counts[:-1] >= counts[1:])  # the first classes get the extra ones
    assert row_lengths == [int(count) for count in counts if count]  # a row per class that got any


@pytest.mark.slow
@pytest.mark.parametrize("existing", ["s.png", "s.npy"])
def test_an_existing_png_or_npy_is_refused_and_kept_unless_overwrite(tiny_run, tmp_path, existing):
    (tmp_path / existing).write_bytes(b"mine")
    with pytest.raises(FileExistsError, match=f"{existing} already exists.*--overwrite"):
        sample_images(tiny_run, num=2, labels=1, seed=0, out=str(tmp_path / "s.png"))
    assert sorted(path.name for path in tmp_path.iterdir()) == [existing]
    assert (tmp_path / existing).read_bytes() == b"mine"
    _, codes = sample_images(tiny_run, num=2, labels=1, seed=0, out=str(tmp_path / "s.png"), overwrite=True)
    np.testing.assert_array_equal(np.load(tmp_path / "s.npy"), codes)
