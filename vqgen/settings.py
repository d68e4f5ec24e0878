"""The one home of vqgen's defaults: a frozen dataclass per concern, free of TensorFlow.

The constructors' signatures (`VQVAE`, `Encoder`, `Decoder`, the quantizers), the run config
written to `config.json` and the CLI's options and help text all read their defaults from here, so a
default changes in one line. The prior's model defaults live in `prior/settings.py` (the `prior`
package imports nothing from `vqgen`).

Each field's `metadata["help"]` is the CLI help text; optional `metadata` keys shape the CLI option:
`choices`, `cli_type` (instead of a positive integer) and `short_flags`. A `tuple[int, ...]` field
is a comma-separated option (`--levels 8,5,5,5`).

Example:
>>> VQVAE_DEFAULTS.num_embeddings
256
>>> dataclasses.replace(VQVAE_DEFAULTS, num_embeddings=512).num_embeddings
512
"""

import dataclasses

# The Keras dtype policies a stage may train under (`TrainingSettings.precision`).
# "auto": mixed_bfloat16 on a CPU with bfloat16 matrix units (AMX or AVX512-BF16), else float32.
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")


def parse_image_size(text):
    """Parses `--image-size`: "64" -> (64, 64), "48x64" -> (48, 64).

    Args:
        text: str, `H` or `HxW` with positive integers.

    Returns:
        `(H, W)` ints.

    Raises:
        ValueError: for any other form.
    """
    parts = str(text).lower().split("x")
    if len(parts) in (1, 2) and all(part.strip().isdigit() and int(part) > 0 for part in parts):
        sizes = [int(part) for part in parts]
        return (sizes[0], sizes[-1])
    raise ValueError(f"image size must be H or HxW with positive integers (e.g. 48x64). Received: {text}")


def _setting(default, help_text, **cli):
    """A dataclass field with its default, its CLI help and optional CLI shaping (see above)."""
    return dataclasses.field(default=default, metadata={"help": help_text, **cli})


@dataclasses.dataclass(frozen=True)
class VectorQuantizerSettings:
    """Defaults of the `VectorQuantizer` layer used on its own: the paper's plain quantizer."""

    beta: float = _setting(0.25, "commitment cost (the paper's beta)")
    ema: bool = _setting(False, "learn the codebook by exponential moving averages")
    decay: float = _setting(0.99, "EMA decay (the paper's value)")
    epsilon: float = _setting(1e-5, "Laplace smoothing of the EMA cluster sizes")
    restart_after_steps: int | None = _setting(None, "re-seed codes unused for this many steps")
    init_from_data: bool = _setting(False, "initialise the codebook from the first batch")
    codebook_dim: int | None = _setting(
        None, "look codes up in a learned projection to this many dimensions (None: in the input's)"
    )
    l2_normalize: bool = _setting(False, "nearest code by cosine similarity, codes of unit length")


@dataclasses.dataclass(frozen=True)
class FiniteScalarQuantizerSettings:
    """Defaults of the `FiniteScalarQuantizer` layer."""

    levels: tuple[int, ...] = _setting(
        (8, 5, 5, 5), "levels per channel (1000 codes, the paper's 2^10 choice)"
    )
    standardize: bool = _setting(
        True,
        "standardise each channel by its running mean and variance, so it stays in the range the fixed "
        "levels cover",
    )
    decay: float = _setting(0.99, "EMA decay of the running per-channel mean and variance")


@dataclasses.dataclass(frozen=True)
class VQVAESettings:
    """Defaults of the stage-1 model and of its quantizer shortcuts (`quantizer="vq" | "fsq" | "rvq"`).

    The VQ settings differ from the paper's plain quantizer (`VectorQuantizerSettings`): an EMA codebook
    initialised from the first batch, with codes unused for `restart_after_steps` steps re-seeded from
    encoder outputs (`scripts/compare_keras_example.py` compares the two).
    """

    num_embeddings: int = _setting(256, "codebook size K")
    embedding_dim: int = _setting(16, "code vector size D")
    quantizer: str = _setting(
        "vq",
        "vq: a learned codebook (the paper's); fsq: finite scalar quantization, no codebook; "
        "rvq: residual VQ, --num-quantizers codes per position",
        choices=("vq", "fsq", "rvq"),
    )
    levels: tuple[int, ...] = _setting(
        FiniteScalarQuantizerSettings.levels,
        "fsq only: levels per channel, comma-separated; the encoder depth is their count and K their "
        "product (--embedding-dim and --num-embeddings are ignored)",
    )
    num_quantizers: int = _setting(2, "rvq only: codebooks d, so d codes per position")
    quantizer_dropout: float = _setting(
        0.0, "rvq only: probability per training batch of using only the first k < d codebooks"
    )
    latent_decay: float = _setting(
        FiniteScalarQuantizerSettings.decay,
        "fsq only: EMA decay of the running per-channel mean and variance that standardise the encoder "
        "output (with --init-from-data)",
    )
    downsample: int = _setting(4, "spatial reduction from image to code grid", choices=(2, 4, 8))
    hidden_channels: int = _setting(64, "width of the encoder and decoder convolutions")
    residual_channels: int = _setting(32, "width inside the residual blocks")
    num_residual_blocks: int = _setting(2, "residual blocks in the encoder and in the decoder")
    beta: float = _setting(VectorQuantizerSettings.beta, "commitment cost (the paper's beta)")
    ema: bool = _setting(True, "learn the codebook by EMA (--no-ema: by gradient)")
    decay: float = _setting(0.9, "EMA decay; fast-moving suits short trainings, the paper's value long ones")
    epsilon: float = _setting(VectorQuantizerSettings.epsilon, "Laplace smoothing of the EMA cluster sizes")
    restart_after_steps: int | None = _setting(20, "re-seed codes unused for this many training steps")
    init_from_data: bool = _setting(
        True,
        "initialise the codebook from the first batch (fsq: standardise the encoder output by running "
        "statistics)",
    )
    reconstruction_loss: str = _setting(
        "mse",
        "mse: mean squared pixel error (the paper's, LlamaGen's); l1: mean absolute error (taming's VQGAN)",
        choices=("mse", "l1"),
    )
    codebook_dim: int | None = _setting(
        VectorQuantizerSettings.codebook_dim,
        "vq and rvq: look codes up in a learned projection of the encoder output to this many "
        "dimensions (ViT-VQGAN's factorized codes; rvq: one projection for all levels); None: in the "
        "encoder's own D",
    )
    l2_normalize: bool = _setting(
        VectorQuantizerSettings.l2_normalize,
        "vq only: find the nearest code by cosine similarity, with codes and encoder vectors scaled to "
        "unit length (ViT-VQGAN)",
    )


@dataclasses.dataclass(frozen=True)
class DataSettings:
    """Which data a run trains on and how it is split."""

    source: str = _setting(
        "digits",
        "dataset: 'digits' (embedded 5,000 MNIST digits), 'tfds:NAME', a folder of idx .gz files, "
        "a folder of images, an .npz/.npy file, or a glob of TFRecord files ('shards/train-*.tfrecord'); "
        "paths may be any URL TensorFlow reads (gs://, s3://, hdfs://)",
    )
    data_dir: str | None = _setting(None, "TFDS data folder (tfds: sources only)")
    seed: int = _setting(
        0,
        "fixes the split, data order, initialisation, dead-code restarts and `vqgen run`'s samples "
        "(add --deterministic for identical runs)",
        cli_type=int,
    )
    validation_fraction: float = _setting(0.1, "held-out share of the data, in (0, 1)")
    image_size: tuple[int, int] | None = _setting(
        None,
        "H or HxW: scale every image to cover HxW with its aspect ratio kept (bilinear, antialiased), "
        "then crop the centre; without it all images must have one size",
        cli_type=parse_image_size,
    )
    channels: int | None = _setting(
        None,
        "1 (gray) or 3 (RGB): convert every image (alpha is composited on white); without it a set "
        "with any colour image becomes RGB",
        choices=(1, 3),
    )
    max_image_pixels: int = _setting(
        89_478_485,
        "largest height x width of an image file, checked in its header before it is decoded: a larger "
        "one (e.g. a decompression bomb) stops the run with its name; Pillow's own warning limit",
    )
    shuffle_buffer: int = _setting(
        10000,
        "images held for shuffling a tfds: or TFRecord source (read in order); folders and arrays are "
        "shuffled uniformly by index instead",
    )
    tfrecord_image_key: str = _setting(
        "image", "feature of a TFRecord source's tf.train.Example holding the encoded image (TFDS's name)"
    )
    tfrecord_label_key: str = _setting(
        "label",
        "feature of a TFRecord source's tf.train.Example holding the integer label, if any (TFDS's name)",
    )


@dataclasses.dataclass(frozen=True)
class TrainingSettings:
    """How one stage is trained (Adam, a fixed number of epochs)."""

    epochs: int = _setting(10, "epochs")
    batch_size: int = _setting(64, "batch size")
    learning_rate: float = _setting(2e-3, "Adam learning rate")
    precision: str = _setting(
        "float32",
        "Keras dtype policy the model trains under; auto: mixed_bfloat16 on CPUs with AMX or "
        "AVX512-BF16, else float32 (saved models load in float32)",
        choices=PRECISIONS,
    )
    keep_checkpoints: int = _setting(
        2,
        "per-epoch checkpoints kept in checkpoints/STAGE: the newest N epochs; an older one is deleted "
        "only once the new one is written (resuming uses backup/, which is kept apart)",
    )


@dataclasses.dataclass(frozen=True)
class GuidanceSettings:
    """Label dropout, the training side of classifier-free guidance, for a class-conditional prior.

    `vqgen train-prior --conditional` and `vqgen run` train with this `label_dropout`, so their
    priors accept `--guidance` at sampling; the prior constructors' own default stays 0, the value
    every prior saved before the option loads with (see `prior.CodePrior`). An unconditional prior
    has no labels to drop and records 0.
    """

    label_dropout: float = _setting(
        0.1,
        'conditional prior: probability in [0, 1) that a training label is replaced by a "no label" '
        "class, which sampling with --guidance needs (0: no guidance)",
    )


# The guidance scale each prior kind samples with when none is given (`vqgen run`, `vqgen sample`,
# `vqgen evaluate`), for a class-conditional prior trained with label dropout: the pick of
# scripts/compare_guidance.py on the digits and Fashion-MNIST, the scale with the lowest Fréchet distance
# relative to unguided sampling (benchmarks/results/compare_guidance.md; a test checks they agree).
GUIDANCE_BY_PRIOR = {"pixelcnn": 1.5, "transformer": 1.5, "maskgit": 1.0}


@dataclasses.dataclass(frozen=True)
class SampleSettings:
    """How `vqgen sample` draws images from a run."""

    num: int = _setting(64, "images to sample", short_flags=("-n",))
    temperature: float = _setting(1.0, "softmax temperature, > 0; lower is more conservative")
    top_k: int | None = _setting(None, "sample among the K most likely codes only")
    guidance: float | None = _setting(
        None,
        "classifier-free guidance scale s >= 0 (conditional prior trained with --label-dropout): each "
        "code is drawn from u + s (c - u), c the logits given the label, u without; 1: none; None: the "
        "scale measured for the run's prior kind (GUIDANCE_BY_PRIOR of vqgen/settings.py) if it was "
        "trained with label dropout, else 1",
    )
    steps: int | None = _setting(
        None,
        "decoding steps of a MaskGIT prior, in [1, rows*cols] (default: MASKGIT_STEPS of prior/settings.py, "
        "or rows*cols if fewer); the autoregressive priors refuse it",
    )


@dataclasses.dataclass(frozen=True)
class ExportFormatSettings:
    """Which format `vqgen export` writes."""

    format: str = _setting(
        "saved_model",
        "saved_model: a TensorFlow SavedModel (TF Serving); litert: LiteRT (TFLite) models; onnx: ONNX "
        "models (litert and onnx: encode, decode and prior_logits with a NumPy sampling loop; they need "
        "pip install -e '.[export]'); web: the onnx export with a static page that samples it in the "
        "browser (onnxruntime-web; serve the folder, e.g. python -m http.server -d OUT)",
        choices=("saved_model", "litert", "onnx", "web"),
    )


@dataclasses.dataclass(frozen=True)
class EvaluateSettings:
    """How `vqgen evaluate` measures a run."""

    samples: int = _setting(
        500, "samples drawn from the prior for the classifier metrics (0: none)", cli_type=int
    )
    classifier_epochs: int = _setting(3, "epochs of the small classifier trained for the sample metrics")


@dataclasses.dataclass(frozen=True)
class EncodeSettings:
    """How `vqgen encode` writes a dataset's codes."""

    format: str = _setting(
        "tfrecord",
        "tfrecord: tf.train.Example shards (codes, shape, index, label); npy: codes, labels and index "
        ".npy files per shard",
        choices=("tfrecord", "npy"),
    )
    shard_size: int = _setting(4096, "images per shard (the unit of resuming and of memory use)")
    batch_size: int = _setting(256, "images coded at once")


@dataclasses.dataclass(frozen=True)
class ExportSettings:
    """What an exported SavedModel will serve."""

    max_samples: int = _setting(
        1024, "most samples one call of the exported `sample` signature may ask for (larger are refused)"
    )


VECTOR_QUANTIZER_DEFAULTS = VectorQuantizerSettings()
FINITE_SCALAR_QUANTIZER_DEFAULTS = FiniteScalarQuantizerSettings()
VQVAE_DEFAULTS = VQVAESettings()
DATA_DEFAULTS = DataSettings()
# Stage 1 in bfloat16 where the CPU computes it natively: faster, with held-out PSNR as in float32
# (measured by scripts/compare_precision.py: benchmarks/results/compare_precision.md).
VQVAE_TRAINING_DEFAULTS = TrainingSettings(precision="auto")
# The prior trains for longer than stage 1, at a lower learning rate, and in bfloat16 where the CPU
# computes it natively: faster, with held-out bits per code as in float32 (measured by
# scripts/compare_precision.py --stage prior and scripts/benchmark_paper_size.py: their files in
# benchmarks/results/).
PRIOR_TRAINING_DEFAULTS = TrainingSettings(epochs=20, learning_rate=1e-3, precision="auto")
GUIDANCE_DEFAULTS = GuidanceSettings()
SAMPLE_DEFAULTS = SampleSettings()
EXPORT_DEFAULTS = ExportSettings()
EVALUATE_DEFAULTS = EvaluateSettings()
EXPORT_FORMAT_DEFAULTS = ExportFormatSettings()
ENCODE_DEFAULTS = EncodeSettings()


def split_settings(settings, sections, command):
    """Sorts keyword settings into the sections whose dataclass has a field of that name.

    Args:
        settings: dict of setting name to value, e.g. `{"epochs": 5, "num_embeddings": 512}`.
        sections: dict of section name to a settings dataclass instance holding its defaults.
        command: str. The command whose `--help` lists the settings, for the error message.

    Returns:
        dict of section name to the dict of settings given for it (possibly empty).

    Raises:
        ValueError: a name belongs to no section.

    Example:
    >>> split_settings({"epochs": 5}, {"vqvae": VQVAE_DEFAULTS, "training": VQVAE_TRAINING_DEFAULTS},
    ...                "vqgen train")
    {'vqvae': {}, 'training': {'epochs': 5}}
    """
    given = {name: {} for name in sections}
    for key, value in settings.items():
        owner = next(
            (
                name
                for name, defaults in sections.items()
                if key in {field.name for field in dataclasses.fields(defaults)}
            ),
            None,
        )
        if owner is None:
            raise ValueError(f"Unknown setting {key!r}; see `{command} --help` for the options.")
        given[owner][key] = value
    return given


# `vqgen run --quick`: a smoke run with tiny models (one epoch each), to check an installation.
QUICK_STAGE1 = dict(epochs=1, hidden_channels=32, num_residual_blocks=1)
# The same per prior, by its name in `prior.registry.PRIORS` (architecture fields and `epochs`).
QUICK_PRIOR = {
    "pixelcnn": dict(epochs=1, num_layers=3, filters=32),
    "transformer": dict(epochs=1, num_layers=2, hidden_dim=32, num_heads=2, intermediate_dim=64),
    "maskgit": dict(epochs=1, num_layers=2, hidden_dim=32, num_heads=2, intermediate_dim=64),
}


@dataclasses.dataclass(frozen=True)
class AdversarialSettings:
    """Adversarial training of stage 1 (Esser et al. 2021): off unless `adversarial_weight` > 0."""

    adversarial_weight: float = _setting(
        0.0,
        "factor of the adaptively weighted adversarial term of a PatchGAN discriminator trained beside "
        "the VQ-VAE (0: off, no discriminator)",
    )
    adversarial_start: int = _setting(
        0, "training steps before the adversarial term and the discriminator start", cli_type=int
    )
    adversarial_loss: str = _setting(
        "hinge", "the discriminator's and the adversarial term's loss", choices=("hinge", "non-saturating")
    )


ADVERSARIAL_DEFAULTS = AdversarialSettings()


@dataclasses.dataclass(frozen=True)
class PerceptualSettings:
    """An LPIPS-style perceptual loss for stage 1: off unless `perceptual_weight` > 0.

    `perceptual_network` has no default on purpose: a perceptual loss of an untrained VGG16 means
    nothing, so a weight above 0 without it is refused instead of silently using random features.
    """

    perceptual_weight: float = _setting(
        0.0,
        "factor of an LPIPS-style perceptual loss: unit-normalised VGG16 feature differences at five "
        "layers (0: off); needs --perceptual-network",
    )
    perceptual_network: str | None = _setting(
        None,
        "VGG16 weights (without the top) for the perceptual loss and evaluate's LPIPS: imagenet (Keras "
        "downloads them; needs internet) or a local weights file (a .weights.h5, or Keras' "
        "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5)",
    )


PERCEPTUAL_DEFAULTS = PerceptualSettings()
