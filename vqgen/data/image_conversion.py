"""Per-image conversions inside the `tf.data` pipeline: channels (gray, RGB, alpha) and resize + crop.

Both run on one decoded image at a time, in graph mode, so a folder of mixed formats and sizes can be
streamed without a preprocessing pass. The references the tests compare against are PIL's:
`Image.alpha_composite` on white, `convert("L")` (ITU-R 601 luma) and `resize(..., BILINEAR)`.
"""

import numpy as np
import tensorflow as tf

# Pillow modes without colour: a set whose images are all in these modes is gray (1 channel).
GRAY_MODES = ("1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "F")
# ITU-R BT.601 luma weights, the ones PIL's convert("L") and tf.image.rgb_to_grayscale use.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)
WHITE = 255.0


def set_channels(modes):
    """The channels of a set of images: 1 when none has colour, else 3 (the one rule of every reader).

    Both folder readers (the streamed `stream_image_folder` and the in-memory `load_image_folder`)
    pick a set's channels with this rule from the Pillow modes in the files' headers, then convert
    each image with `convert_channels`: gray, gray + alpha, palette, RGB and RGBA files mix freely.

    Args:
        modes: iterable of Pillow mode names (`"L"`, `"LA"`, `"P"`, `"RGB"`, `"RGBA"`, ...).

    Returns:
        1 or 3.

    Example:
    >>> set_channels(["L", "LA"]), set_channels(["L", "RGBA"]), set_channels(["P"])
    (1, 3, 3)
    """
    return 1 if all(mode in GRAY_MODES for mode in modes) else 3


def common_image_shape(source, names, sizes, modes, image_size, channels):
    """The `(H, W, C)` a set of images is served at, from their headers' sizes and modes.

    Without `image_size` every image must have the first one's size; `channels` None follows
    `set_channels`.

    Args:
        source: str. The folder or files, for the message.
        names: sequence of str, one per image, for the message.
        sizes: int array `[N, 2]`, each image's `(height, width)`.
        modes: iterable of Pillow mode names.
        image_size: `(H, W)` or None.
        channels: 1, 3 or None.

    Returns:
        tuple `(H, W, C)`.

    Raises:
        ValueError: the sizes differ and no `image_size` is given (the message suggests it).

    Example:
    >>> common_image_shape("faces/", ["a.png"], np.array([[64, 48]]), ["RGB"], None, None)
    (64, 48, 3)
    """
    if image_size is None:
        differs = np.flatnonzero(np.any(sizes != sizes[0], axis=1))
        if differs.size:
            other = differs[0]
            raise ValueError(
                f"images in {source!r} differ in size: {names[0]!r} is {sizes[0][0]}x{sizes[0][1]} but "
                f"{names[other]!r} is {sizes[other][0]}x{sizes[other][1]}; pass --image-size H[xW] "
                "(image_size=) to scale and centre-crop them to one size"
            )
        height, width = (int(size) for size in sizes[0])
    else:
        height, width = image_size
    return height, width, channels if channels is not None else set_channels(modes)


def convert_channels(pixels, channels):
    """Returns one decoded image with `channels` colour channels, alpha composited on white.

    The decoders give 1 (gray), 2 (gray + alpha), 3 (RGB; palette images are expanded to it) or 4
    (RGBA) channels. Alpha is not dropped but composited on a white background, so transparent
    regions become white rather than whatever colour the file stores under them. Gray becomes RGB by
    repeating it; RGB becomes gray by the ITU-R 601 luma `0.299 R + 0.587 G + 0.114 B`.

    Args:
        pixels: uint8 tensor `[H, W, C]` with C in 1..4 (C may be unknown until run time).
        channels: int, 1 or 3. The channels wanted.

    Returns:
        float32 tensor `[H, W, channels]` on the 0..255 scale (not rounded).

    Example:
    >>> convert_channels(tf.zeros([2, 2, 4], tf.uint8), 3)[0, 0].numpy()  # transparent black
    array([255., 255., 255.], dtype=float32)
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3. Received: channels={channels!r}")
    values = tf.cast(pixels, tf.float32)
    depth = tf.shape(values)[-1]
    has_alpha = tf.equal(depth % 2, 0)  # 2 (gray + alpha) or 4 (RGBA)
    opaque = tf.ones_like(values[..., :1]) * WHITE
    alpha = tf.cond(has_alpha, lambda: values[..., -1:], lambda: opaque) / WHITE  # (H, W, 1)
    color = tf.cond(has_alpha, lambda: values[..., :-1], lambda: values)  # (H, W, 1 or 3)
    color = color * alpha + WHITE * (1.0 - alpha)
    if channels == 3:
        color = tf.cond(tf.equal(tf.shape(color)[-1], 1), lambda: tf.tile(color, [1, 1, 3]), lambda: color)
    else:
        color = tf.cond(
            tf.equal(tf.shape(color)[-1], 3),
            lambda: tf.reduce_sum(color * tf.constant(LUMA_WEIGHTS), axis=-1, keepdims=True),
            lambda: color,
        )
    return tf.ensure_shape(color, [None, None, channels])


def resize_and_crop(pixels, image_size):
    """Scales an image to cover `image_size` with its aspect ratio kept, then crops the centre.

    The scale is the larger of `H / h` and `W / w`, so the scaled image is at least `image_size` in
    both directions and the crop removes only the excess along one of them (half on each side, the
    odd pixel at the bottom/right). Scaling is bilinear with antialiasing (as PIL's `BILINEAR`),
    skipped when the image already has the target height or width at scale 1.

    Args:
        pixels: float32 tensor `[h, w, C]`.
        image_size: `(H, W)` ints.

    Returns:
        float32 tensor `[H, W, C]`.

    Example:
    >>> resize_and_crop(tf.zeros([100, 200, 3]), (32, 32)).shape  # scaled to 32x64, 16 cut each side
    TensorShape([32, 32, 3])
    """
    height, width = image_size
    shape = tf.shape(pixels)
    source = tf.cast(shape[:2], tf.float64)
    scale = tf.maximum(height / source[0], width / source[1])
    scaled = tf.maximum(tf.cast(tf.round(source * scale), tf.int32), [height, width])
    pixels = tf.cond(
        tf.reduce_all(tf.equal(scaled, shape[:2])),
        lambda: pixels,
        lambda: tf.image.resize(pixels, scaled, method="bilinear", antialias=True),
    )
    top = (scaled[0] - height) // 2
    left = (scaled[1] - width) // 2
    cropped = pixels[top : top + height, left : left + width]
    return tf.ensure_shape(cropped, [height, width, pixels.shape[-1]])


def to_uint8(pixels):
    """Rounds float pixels on the 0..255 scale to uint8 (clipped)."""
    return tf.cast(tf.clip_by_value(tf.round(pixels), 0.0, WHITE), tf.uint8)


def image_transform(image_shape, image_size):
    """The tf function that turns one decoded uint8 image `[h, w, 1..4]` into uint8 `image_shape`.

    Args:
        image_shape: `(H, W, C)` of the result; C is 1 or 3 (see `convert_channels`).
        image_size: `(H, W)` to scale and crop to (see `resize_and_crop`), or None when every image
            already has that size (then a different size fails at run time).

    Returns:
        A function `uint8 [h, w, c] -> uint8 image_shape`.
    """
    depth = image_shape[2]

    def convert(pixels):
        values = convert_channels(pixels, depth)
        if image_size is not None:
            values = resize_and_crop(values, image_size)
        return to_uint8(values)

    def transform(pixels):
        shape = tf.shape(pixels)
        ready = tf.reduce_all(tf.equal(shape, image_shape))  # the common case: nothing to do
        return tf.ensure_shape(tf.cond(ready, lambda: pixels, lambda: convert(pixels)), image_shape)

    return transform
