"""An image file's header (format, mode, size) read without decoding its pixels, and the pixel limit.

Every image reader of `vqgen.data` (the streamed folder's listing, `load_image_folder`, and the
decoding inside the `tf.data` pipeline) reads the header first and refuses an image of more than
`max_image_pixels` pixels before anything decodes it, so a decompression bomb (a 30000x30000 PNG of
under 1 MB) costs a header read, not gigabytes. Pillow's `Image.open` is lazy: it parses the header
(PNG IHDR, JPEG SOF, GIF and BMP headers, WebP chunks) and leaves the pixels alone.
"""

import dataclasses
import io
import re
import warnings

import numpy as np
import tensorflow as tf

from vqgen.data.error_text import first_line
from vqgen.storage import is_remote, open_file

MAX_PIXELS_HINT = "--max-image-pixels (max_image_pixels=)"
# Formats Pillow may recognise in a file's header that tf.io.decode_image decodes.
DECODABLE_FORMATS = ("PNG", "JPEG", "MPO", "BMP", "GIF", "WEBP")
# The refusal of an image inside the pipeline, after its name (unquoted: TensorFlow escapes quotes), and how
# it is found again in the text of TensorFlow's error (`assertion failed: [TEXT]`).
_IN_PIPELINE_REFUSAL = (
    " has more than {max_pixels:,} pixels, the limit per image; shrink or remove it, or raise "
    + MAX_PIXELS_HINT
    + " if it is meant to be read"
)
_REFUSAL_PATTERN = re.compile(
    r"assertion failed: \[(.*? has more than [\d,]+ pixels, the limit per image;[^\]]*)\]"
)


@dataclasses.dataclass(frozen=True)
class ImageHeader:
    """What an image file's header says: Pillow's format and mode names and the size in pixels."""

    format: str
    mode: str
    height: int
    width: int


def _pillow_refusal(name, max_pixels):
    """The error for a file Pillow itself refuses to open as a decompression bomb."""
    from PIL import Image

    pillow_limit = 2 * Image.MAX_IMAGE_PIXELS  # Pillow raises above twice its warning limit
    if max_pixels < pillow_limit:
        return ValueError(
            f"{name!r} has more than {pillow_limit:,} pixels, above the limit of {max_pixels:,} pixels per "
            f"image; shrink or remove it, or raise {MAX_PIXELS_HINT} if it is meant to be read"
        )
    return ValueError(
        f"{name!r} has more than {pillow_limit:,} pixels, more than Pillow opens "
        f"(2 x PIL.Image.MAX_IMAGE_PIXELS); shrink or remove it"
    )


def read_image_header(source, name, max_pixels):
    """Reads an image's header and refuses it when it has more than `max_pixels` pixels.

    Only the header is parsed (Pillow's lazy `Image.open`); no pixel is decoded.

    Args:
        source: str path (local or a `tf.io.gfile` URL, read lazily: only the header's bytes), or a
            binary file object (e.g. `io.BytesIO` of encoded bytes).
        name: str. The file (or example) to name in messages.
        max_pixels: int >= 1. The largest height x width accepted.

    Returns:
        An `ImageHeader`.

    Raises:
        ValueError: one line naming `name`: the file cannot be read, its header is not an image's, or
            the image has more than `max_pixels` pixels (the message names `--max-image-pixels`).

    Example:
    >>> read_image_header("digit.png", "digit.png", max_pixels=10_000)  # doctest: +SKIP
    ImageHeader(format='PNG', mode='L', height=28, width=28)
    """
    from PIL import Image

    if isinstance(source, str) and is_remote(source):  # Pillow reads the header from a lazy GFile
        try:
            with open_file(source) as stream:
                return read_image_header(stream, name, max_pixels)
        except tf.errors.OpError as error:
            raise ValueError(
                f"cannot read {name!r} ({first_line(error.message)}); check that it exists and is readable, "
                "or remove it"
            ) from None
    try:
        with warnings.catch_warnings():  # the limit below replaces Pillow's DecompressionBombWarning
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(source) as image:
                header = ImageHeader(image.format, image.mode, image.size[1], image.size[0])
    except Image.DecompressionBombError:
        raise _pillow_refusal(name, max_pixels) from None
    except OSError as error:
        if error.errno is None:  # Pillow's own errors (UnidentifiedImageError, a truncated header)
            raise ValueError(
                f"cannot decode {name!r} as an image ({first_line(error)}); the file is corrupt or "
                f"mislabelled, re-save or remove it"
            ) from None
        raise ValueError(
            f"cannot read {name!r} ({error.strerror}); check that it exists and is readable, or remove it"
        ) from None
    except (ValueError, SyntaxError) as error:
        raise ValueError(
            f"cannot decode {name!r} as an image ({first_line(error)}); the file is corrupt or "
            f"mislabelled, re-save or remove it"
        ) from None
    check_pixel_count(header.height, header.width, name, max_pixels)
    return header


def check_decodable(header, name):
    """Raises ValueError naming `name` unless the header's format is one `tf.io.decode_image` decodes.

    Example:
    >>> check_decodable(ImageHeader("TIFF", "RGB", 8, 8), "scan.tif")  # doctest: +SKIP
    ValueError: 'scan.tif' is TIFF, which TensorFlow cannot decode; convert it to PNG or JPEG, or remove it
    """
    if header.format not in DECODABLE_FORMATS:
        raise ValueError(
            f"{name!r} is {header.format}, which TensorFlow cannot decode; convert it to PNG or JPEG, or "
            "remove it"
        )


def check_pixel_count(height, width, name, max_pixels):
    """Raises ValueError naming `name` and `--max-image-pixels` when `height * width > max_pixels`.

    Example:
    >>> check_pixel_count(30000, 30000, "bomb.png", 89_478_485)  # doctest: +SKIP
    ValueError: 'bomb.png' is 30000x30000 = 900,000,000 pixels, above the limit of 89,478,485 ...
    """
    if height * width > max_pixels:
        raise ValueError(
            f"{name!r} is {height}x{width} = {height * width:,} pixels, above the limit of {max_pixels:,} "
            f"pixels per image; shrink or remove it, or raise {MAX_PIXELS_HINT} if it is meant to be read"
        )


def check_max_image_pixels(max_pixels):
    """Returns `max_pixels` as an int after checking it is a positive integer, or raises ValueError."""
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, (int, np.integer)) or max_pixels < 1:
        raise ValueError(
            f"max_image_pixels must be a positive integer (height x width). Received: "
            f"max_image_pixels={max_pixels!r}"
        )
    return int(max_pixels)


def _encoded_size(data):
    """`[height, width]` int64 from encoded image bytes' header, or `[-1, -1]` when Pillow cannot read it."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(np.asarray(data).item())) as image:  # bytes, given 0-d or not
                width, height = image.size
    except Image.DecompressionBombError:
        return np.array([2**31, 2**31], np.int64)  # above any limit: refused below, not decoded
    except Exception:  # noqa: BLE001  (an unreadable header: tf.io.decode_image reports it)
        return np.array([-1, -1], np.int64)
    return np.array([height, width], np.int64)


def refusal_in_pipeline(error):
    """The one-line refusal of `decode_within_limit` inside a `tf.data` error, or None if it is another error.

    Args:
        error: a `tf.errors.OpError` raised while iterating a dataset.

    Returns:
        str or None.
    """
    found = _REFUSAL_PATTERN.search(error.message)
    return found.group(1) if found else None


def decode_within_limit(data, name, max_pixels, channels=0):
    """Decodes encoded image bytes inside `tf.data` after checking their header's pixel count.

    The header's size is read in Python (`tf.numpy_function`, Pillow's lazy open) before
    `tf.io.decode_image` runs, so an image of more than `max_pixels` pixels fails the pipeline with
    an `InvalidArgumentError` (an assertion naming `name` and the limit) without being decoded.
    Bytes whose header Pillow cannot read go to the decoder, which reports them.

    Args:
        data: scalar string tensor, the encoded image (PNG, JPEG, BMP, GIF, WebP).
        name: scalar string tensor or str, the file or example, for the message.
        max_pixels: int >= 1.
        channels: int. As for `tf.io.decode_image`: 0 keeps the file's own channels.

    Returns:
        uint8 tensor `[H, W, C]` (the first frame of a GIF).

    Example:
    >>> data = tf.io.read_file("digit.png")  # doctest: +SKIP
    >>> decode_within_limit(data, "digit.png", 89_478_485).shape  # doctest: +SKIP
    TensorShape([28, 28, 1])
    """
    size = tf.numpy_function(_encoded_size, [data], tf.int64, stateful=False)
    size = tf.ensure_shape(size, [2])
    pixels = size[0] * size[1]
    refusal = tf.strings.join([name, _IN_PIPELINE_REFUSAL.format(max_pixels=max_pixels)])
    check = tf.debugging.Assert(pixels <= max_pixels, [refusal])
    with tf.control_dependencies([check]):
        data = tf.identity(data)
    return tf.io.decode_image(data, channels=channels, dtype=tf.uint8, expand_animations=False)
