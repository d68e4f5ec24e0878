"""An in-memory set of images with optional integer class labels."""

import dataclasses

import numpy as np

from vqgen.data.float_images import check_float_pixels


def _standardized_images(images, name):
    """Returns `images` as a `[N, H, W, C]` uint8 or float32 array, or raises ValueError."""
    pixels = np.asarray(images)
    if pixels.ndim == 3:
        pixels = pixels[..., np.newaxis]
    if pixels.ndim != 4:
        raise ValueError(
            f"images from {name!r} must have shape [N, H, W] or [N, H, W, C]; reshape them. "
            f"Received: shape={pixels.shape}"
        )
    if pixels.shape[3] not in (1, 3):
        raise ValueError(
            f"images from {name!r} must have 1 (grayscale) or 3 (RGB) channels; convert them "
            f"(e.g. drop the alpha channel). Received: channels={pixels.shape[3]}"
        )
    if pixels.shape[1] == 0 or pixels.shape[2] == 0:
        raise ValueError(
            f"images from {name!r} have zero height or width; check how they were saved. "
            f"Received: shape={pixels.shape}"
        )
    if pixels.dtype == np.uint8:
        return pixels
    if np.issubdtype(pixels.dtype, np.floating):
        check_float_pixels(pixels, name=f"images from {name!r}")
        return pixels.astype(np.float32, copy=False)
    if np.issubdtype(pixels.dtype, np.integer):
        if pixels.size and (pixels.min() < 0 or pixels.max() > 255):
            raise ValueError(
                f"images from {name!r} have integer pixels outside 0..255 (min={pixels.min()}, "
                f"max={pixels.max()}); rescale them to 0..255 or to floats in [0, 1]"
            )
        return pixels.astype(np.uint8)
    raise ValueError(
        f"images from {name!r} must hold uint8 (0..255) or float (0..1) pixels; convert them. "
        f"Received: dtype={pixels.dtype}"
    )


def _standardized_labels(labels, count, num_classes, name):
    """Returns `(labels as int32 [N], num_classes)` after validation, or raises ValueError."""
    if labels is None:
        if num_classes is not None:
            raise ValueError(
                f"num_classes is only meaningful with labels; pass labels or num_classes=None. "
                f"Received: num_classes={num_classes}"
            )
        return None, None
    values = np.asarray(labels)
    if values.ndim != 1 or values.shape[0] != count:
        raise ValueError(
            f"labels from {name!r} must have shape [{count}] (one per image); fix the label "
            f"array. Received: shape={values.shape}"
        )
    if values.dtype == np.bool_ or not np.issubdtype(values.dtype, np.integer):
        raise ValueError(
            f"labels from {name!r} must be integer class ids; convert them with "
            f".astype(np.int32). Received: dtype={values.dtype}"
        )
    if count and values.min() < 0:
        raise ValueError(
            f"labels from {name!r} must be >= 0; renumber the classes from 0. "
            f"Received: min label={values.min()}"
        )
    if num_classes is None:
        num_classes = int(values.max()) + 1 if count else 0
    elif isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int or None. Received: num_classes={num_classes!r}")
    elif count and values.max() >= num_classes:
        raise ValueError(
            f"labels from {name!r} must be < num_classes={num_classes}; raise num_classes or fix "
            f"the labels. Received: max label={values.max()}"
        )
    return values.astype(np.int32), int(num_classes)


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class ImageSet:
    """An in-memory image dataset: a `[N, H, W, C]` pixel array, optional labels and its origin.

    The container every `vqgen.data` source returns and `to_dataset` consumes. Construction
    validates and standardizes the arrays, so an `ImageSet` always holds clean data:

    - `[N, H, W]` images gain a channel axis; `C` must be 1 (grayscale) or 3 (RGB);
    - pixels stay uint8 (0..255) or become float32 in [0, 1]: float arrays are checked for
      NaN/inf and for values outside [0, 1]; other integer arrays must lie in 0..255 and become
      uint8;
    - labels become int32 `[N]` with values in `[0, num_classes)`; when `num_classes` is omitted
      it is inferred as `max(labels) + 1`.

    `N` may be 0 (e.g. the validation part of `split_images(..., validation_fraction=0)`).

    Args:
        images: array `[N, H, W, C]` or `[N, H, W]` of uint8 (0..255) or float (0..1) pixels.
        labels: integer array `[N]` of class ids, or None.
        num_classes: int, or None to infer it from `labels`; must be None without labels.
        name: str. Where the images came from (the source string given to `load_images`),
            used in messages and configs.

    Raises:
        ValueError: for a wrong rank or channel count, bad pixel values, labels of the wrong
            shape/dtype/range, or an empty name.

    Example:
    >>> images = ImageSet(np.zeros((4, 8, 8), np.uint8), np.arange(4), None, "zeros")
    >>> images.image_shape, len(images), images.num_classes
    ((8, 8, 1), 4, 4)
    """

    images: np.ndarray
    labels: np.ndarray | None
    num_classes: int | None
    name: str

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name must be a non-empty string. Received: name={self.name!r}")
        images = _standardized_images(self.images, self.name)
        labels, num_classes = _standardized_labels(self.labels, images.shape[0], self.num_classes, self.name)
        object.__setattr__(self, "images", images)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "num_classes", num_classes)

    @property
    def image_shape(self):
        """The `(H, W, C)` shape of one image."""
        return tuple(int(size) for size in self.images.shape[1:])

    def __len__(self):
        return int(self.images.shape[0])

    def __repr__(self):
        labels = "None" if self.labels is None else f"int32{list(self.labels.shape)}"
        return (
            f"ImageSet(name={self.name!r}, images={self.images.dtype}{list(self.images.shape)}, "
            f"labels={labels}, num_classes={self.num_classes})"
        )
