"""The embedded RGB dataset: seeded random crops of the photographs shipped with scikit-image.

No RGB dataset can be downloaded on every machine, but scikit-image's wheel carries a few real
colour photographs in `skimage/data/`. `load_photos` cuts a fixed, seeded set of square crops from
them, so `load_images("photos")` is the same finite set of images wherever scikit-image is
installed: a stand-in for the natural images of the VQ-VAE paper (128x128 RGB), small enough for a
CPU, not a benchmark dataset.
"""

import os

import numpy as np

PHOTOS_SOURCE = "photos"
# The real RGB photographs of `skimage/data/` (file, smallest side in pixels). Grayscale photos
# (camera, moon, coins, ...) are skipped rather than converted, and so are the synthetic
# images (chessboard, color wheel, phantom, logo, horse silhouette).
PHOTO_FILES = (
    ("astronaut.png", 512),
    ("chelsea.png", 300),
    ("coffee.png", 400),
    ("hubble_deep_field.jpg", 872),
    ("ihc.png", 512),
    ("motorcycle_left.png", 500),
    ("motorcycle_right.png", 500),
    ("retina.jpg", 1411),
    ("rocket.jpg", 427),
)
PHOTOS_DEFAULT_SIZE = 128
PHOTOS_CROPS_PER_PHOTO = 100
# Fixed, so `photos:SIZE` names one set of crops; not the run's --seed (that one splits and shuffles).
PHOTOS_CROP_SEED = 1234
PHOTOS_MIN_SIZE = 8
PHOTOS_MAX_SIZE = min(side for _, side in PHOTO_FILES)


def photos_directory():
    """The folder of scikit-image's bundled images, or ImportError naming the package to install."""
    try:
        import skimage  # imported only when the photos are asked for
    except ImportError as error:
        raise ImportError(
            "the 'photos' source needs scikit-image, which ships the photographs; pip install scikit-image"
        ) from error
    return os.path.join(os.path.dirname(skimage.__file__), "data")


def parse_photos_source(source):
    """The crop size named by a `photos` source: `"photos"` (128) or `"photos:SIZE"`.

    Args:
        source: str, `"photos"` or `"photos:SIZE"` with an int SIZE in
            [`PHOTOS_MIN_SIZE`, `PHOTOS_MAX_SIZE`].

    Returns:
        int, the side of the square crops.

    Raises:
        ValueError: if SIZE is not an int in range.

    Example:
    >>> parse_photos_source("photos:64")
    64
    """
    if source == PHOTOS_SOURCE:
        return PHOTOS_DEFAULT_SIZE
    text = source[len(PHOTOS_SOURCE) + 1 :]
    if not text.isdigit() or not PHOTOS_MIN_SIZE <= int(text) <= PHOTOS_MAX_SIZE:
        raise ValueError(
            f"a photos source is 'photos' ({PHOTOS_DEFAULT_SIZE}x{PHOTOS_DEFAULT_SIZE} crops) or "
            f"'photos:SIZE' with SIZE an int in [{PHOTOS_MIN_SIZE}, {PHOTOS_MAX_SIZE}]. "
            f"Received: source={source!r}"
        )
    return int(text)


def is_photos_source(source):
    """Whether `source` names the photos dataset (`"photos"` or `"photos:..."`)."""
    return source == PHOTOS_SOURCE or source.startswith(PHOTOS_SOURCE + ":")


def crop_offsets(photo_shapes, size, crops_per_photo=PHOTOS_CROPS_PER_PHOTO, seed=PHOTOS_CROP_SEED):
    """Top-left corners of the seeded crops: uniform over every position where a crop fits.

    Args:
        photo_shapes: list of `(height, width)` per photo.
        size: int, the side of the square crops.
        crops_per_photo: int, crops cut from each photo.
        seed: int, the seed of the NumPy generator that draws the corners.

    Returns:
        int32 `[len(photo_shapes) * crops_per_photo, 3]` rows of `(photo index, top, left)`,
        photo by photo.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for index, (height, width) in enumerate(photo_shapes):
        tops = rng.integers(0, height - size + 1, size=crops_per_photo)
        lefts = rng.integers(0, width - size + 1, size=crops_per_photo)
        rows.append(np.stack([np.full(crops_per_photo, index), tops, lefts], axis=1))
    return np.concatenate(rows).astype(np.int32)


def load_photos(size=PHOTOS_DEFAULT_SIZE, crops_per_photo=PHOTOS_CROPS_PER_PHOTO, seed=PHOTOS_CROP_SEED):
    """Seeded random square crops of scikit-image's nine bundled RGB photographs.

    The photographs are the `PHOTO_FILES` of `skimage/data/` (astronaut, chelsea the cat, coffee,
    the Hubble deep field, an IHC stain, two motorcycles, a retina, a rocket), decoded with
    Pillow. Each gives `crops_per_photo` crops whose top-left corners are drawn uniformly by
    `crop_offsets`; a crop is the photo's pixels unchanged (no resizing). The label of a crop is
    the index of its photo in `PHOTO_FILES`. Crops of one photo overlap, so a random split puts
    overlapping pixels on both sides: held-out figures on it measure fitting, not
    generalisation to new photographs.

    Args:
        size: int in [`PHOTOS_MIN_SIZE`, `PHOTOS_MAX_SIZE`], the side of the square crops.
            Defaults to 128.
        crops_per_photo: int >= 1, crops per photograph. Defaults to 100.
        seed: int, fixes the crop corners. Defaults to `PHOTOS_CROP_SEED`.

    Returns:
        `(images, labels, offsets)`: uint8 `[9 * crops_per_photo, size, size, 3]`, int32 labels
        in 0..8 and the int32 `(photo index, top, left)` of every crop.

    Raises:
        ValueError: if `size` or `crops_per_photo` is out of range.
        ImportError: if scikit-image is not installed.

    Example:
    >>> images, labels, offsets = load_photos(size=128)
    >>> images.shape
    (900, 128, 128, 3)
    """
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
        raise ValueError(f"size must be an int. Received: size={size!r}")
    if not PHOTOS_MIN_SIZE <= size <= PHOTOS_MAX_SIZE:
        raise ValueError(
            f"size must be in [{PHOTOS_MIN_SIZE}, {PHOTOS_MAX_SIZE}] (the smallest photo is "
            f"{PHOTOS_MAX_SIZE} pixels high). Received: size={size}"
        )
    if isinstance(crops_per_photo, bool) or not isinstance(crops_per_photo, (int, np.integer)):
        raise ValueError(
            f"crops_per_photo must be an int >= 1. Received: crops_per_photo={crops_per_photo!r}"
        )
    if crops_per_photo < 1:
        raise ValueError(f"crops_per_photo must be an int >= 1. Received: crops_per_photo={crops_per_photo}")
    from PIL import Image  # Pillow comes with scikit-image

    directory = photos_directory()
    photos = []
    for name, _ in PHOTO_FILES:
        with Image.open(os.path.join(directory, name)) as image:
            photos.append(np.asarray(image.convert("RGB")))
    offsets = crop_offsets([photo.shape[:2] for photo in photos], size, crops_per_photo, seed)
    images = np.stack([photos[index][top : top + size, left : left + size] for index, top, left in offsets])
    return images, offsets[:, 0].copy(), offsets
