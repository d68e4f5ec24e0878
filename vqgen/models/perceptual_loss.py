"""An LPIPS-style perceptual loss: unit-normalised differences of frozen VGG16 features at five layers.

Reference: Zhang, Isola, Efros, Shechtman and Wang, "The Unreasonable Effectiveness of Deep Features
as a Perceptual Metric" (2018), the distance VQGAN-class tokenizers (Esser et al. 2021) add to their
reconstruction loss. The LPIPS paper weighs each channel's squared difference by learned linear heads;
those weights are not part of `keras.applications`, so here every channel weighs 1 (the paper's
"baseline" variant of the distance, `lpips=False` in its code).
"""

import math
import os
import types
import warnings

import keras
import numpy as np
import tensorflow as tf

from vqgen.models.losses import LossTerm

# The VGG16 layers whose features are compared (the last convolution of each of the five blocks).
VGG16_LAYERS = ("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3")
# The smallest image side VGG16 takes (five 2x2 poolings); smaller images are scaled up to it.
VGG16_MIN_SIZE = 32
# `network` value that lets Keras download the ImageNet weights.
IMAGENET = "imagenet"
# Images per VGG16 pass when `mean_perceptual_distance` measures a whole set.
DISTANCE_BATCH_SIZE = 64


def vgg16_features(network):
    """A frozen VGG16 (without its top) returning its features at `VGG16_LAYERS`.

    Args:
        network: str. `"imagenet"` (Keras downloads the weights, or finds them in `~/.keras/models`)
            or the path of a weights file of VGG16 without its top: a `.weights.h5` written by
            `keras.applications.VGG16(include_top=False).save_weights`, or Keras' own
            `vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5`.

    Returns:
        A `keras.Model` mapping VGG16 inputs `[B, H, W, 3]` (see `vgg16_input`) to a list of the
        five feature maps; its weights are not trainable.

    Raises:
        ValueError: `network` is None, the download fails, or the file does not hold the weights
            of VGG16 without its top.
        FileNotFoundError: no file at the path.

    Example:
    >>> features = vgg16_features("vgg16_notop.weights.h5")  # doctest: +SKIP
    >>> [tuple(f.shape) for f in features(tf.zeros((1, 32, 32, 3)))][-1]  # doctest: +SKIP
    (1, 2, 2, 512)
    """
    fix = "pass --perceptual-network PATH, a local weights file of VGG16 without its top"
    if network is None:
        raise ValueError(
            "The perceptual loss needs trained VGG16 weights (a random network is never used); "
            f"{fix}, or imagenet. Received: network=None"
        )
    if network != IMAGENET and not os.path.isfile(network):
        raise FileNotFoundError(f"No VGG16 weights file at {network}; {fix}.")
    try:
        with warnings.catch_warnings():  # a wrong file makes Keras warn once per layer before it fails
            warnings.simplefilter("ignore")
            vgg = keras.applications.VGG16(include_top=False, weights=network, input_shape=(None, None, 3))
    except Exception as error:  # a failed download or an unreadable file fails in many ways
        if network == IMAGENET:
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise ValueError(
                f"Keras could not download the ImageNet VGG16 weights ({reason}); {fix}."
            ) from None
        raise ValueError(
            f"{network} does not hold the weights of VGG16 without its top (Keras: {type(error).__name__}); "
            f"{fix}."
        ) from None
    vgg.trainable = False
    return keras.Model(
        vgg.input, [vgg.get_layer(name).output for name in VGG16_LAYERS], name="vgg16_features"
    )


def vgg16_input(images):
    """Images in [0, 1] as VGG16 takes them: RGB, at least `VGG16_MIN_SIZE` on each side, preprocessed.

    Gray images are repeated to three channels; an image with a side below 32 is scaled up
    (bilinear, aspect ratio kept) so its shorter side is 32; then `keras.applications.vgg16.
    preprocess_input` of the pixels times 255 (RGB to BGR, minus the ImageNet mean).

    Args:
        images: float tensor `[B, H, W, C]`, C 1 or 3, H and W known.

    Returns:
        float32 tensor `[B, H', W', 3]`.
    """
    images = tf.cast(images, "float32")
    if images.shape[-1] == 1:
        images = tf.repeat(images, 3, axis=-1)
    height, width = images.shape[1], images.shape[2]
    if min(height, width) < VGG16_MIN_SIZE:
        scale = VGG16_MIN_SIZE / min(height, width)
        images = tf.image.resize(images, (math.ceil(height * scale), math.ceil(width * scale)), "bilinear")
    return keras.applications.vgg16.preprocess_input(images * 255.0)


def perceptual_distance(features, images, reconstructions):
    """The LPIPS-style distance of each image to its reconstruction, with every channel weighted 1.

    At each layer of `features`, each position's feature vector is scaled to unit length over the
    channels; the squared difference of the two images' vectors is summed over channels, averaged
    over positions, and the layers' averages are added up. 0 for identical images.

    Args:
        features: the model of `vgg16_features`.
        images: float tensor `[B, H, W, C]` in [0, 1].
        reconstructions: float tensor of the same shape.

    Returns:
        float32 tensor `[B]`.

    Example:
    >>> perceptual_distance(vgg16_features("vgg.weights.h5"), images, images)  # doctest: +SKIP
    <tf.Tensor: shape=(8,), dtype=float32, numpy=array([0., 0., 0., 0., 0., 0., 0., 0.], ...)>
    """
    count = tf.shape(images)[0]
    both = vgg16_input(tf.concat([tf.cast(images, "float32"), tf.cast(reconstructions, "float32")], 0))
    distance = 0.0
    for layer in features(both):  # (2B, h, w, channels) per layer
        unit = tf.math.l2_normalize(tf.cast(layer, "float32"), axis=-1, epsilon=1e-20)
        squared = tf.reduce_sum(tf.square(unit[:count] - unit[count:]), axis=-1)  # (B, h, w)
        distance += tf.reduce_mean(squared, axis=[1, 2])
    return distance


def mean_perceptual_distance(features, images, reconstructions):
    """The mean `perceptual_distance` of a set of images to their reconstructions (LPIPS of a set).

    Args:
        features: the model of `vgg16_features`.
        images: float array `[N, H, W, C]` in [0, 1].
        reconstructions: float array of the same shape.

    Returns:
        float.

    Example:
    >>> features = vgg16_features("vgg.weights.h5")  # doctest: +SKIP
    >>> mean_perceptual_distance(features, images, model.reconstruct(images))  # doctest: +SKIP
    0.1234
    """
    distance = tf.function(lambda a, b: perceptual_distance(features, a, b), reduce_retracing=True)
    parts = [
        distance(
            images[start : start + DISTANCE_BATCH_SIZE], reconstructions[start : start + DISTANCE_BATCH_SIZE]
        )
        for start in range(0, len(images), DISTANCE_BATCH_SIZE)
    ]
    return float(np.mean(np.concatenate([part.numpy() for part in parts])))


@keras.saving.register_keras_serializable(package="vqgen")
class PerceptualLoss(LossTerm):
    """An LPIPS-style perceptual term: `weight` times the batch's mean `perceptual_distance`.

    The VGG16 that gives the features is frozen and kept outside Keras' tracking: neither the
    model's optimizer, its checkpoints, its `.keras` file nor an export holds it (its weights file
    is the network's one home). A term loaded from a saved model therefore comes without its network
    (`load_network=False`): loading a trained VQ-VAE never needs the weights file, and calling such a
    term raises. The term computes in float32; the VGG16 follows the global dtype policy.

    Args:
        weight: float >= 0. The term's factor. Defaults to 1.0.
        network: str or path-like. `"imagenet"` or the path of a weights file of VGG16 without its
            top (see `vgg16_features`). Defaults to `"imagenet"`.
        load_network: bool. Read the network now; False makes a term that only records its
            settings (what loading a saved model does). Defaults to True.
        **kwargs: base `LossTerm` arguments; `name` defaults to `"perceptual_loss"`, `dtype` to
            `"float32"`.

    Raises:
        ValueError: a negative `weight`, or a network `vgg16_features` refuses.
        FileNotFoundError: no weights file at `network`.

    Example:
    >>> term = PerceptualLoss(weight=0.1, network="vgg16_notop.weights.h5")  # doctest: +SKIP
    >>> model = VQVAE(input_shape=(28, 28, 1), loss_terms=[term])  # doctest: +SKIP
    """

    def __init__(self, weight=1.0, network=IMAGENET, load_network=True, **kwargs):
        kwargs.setdefault("name", "perceptual_loss")
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if weight < 0:
            raise ValueError(f"The perceptual weight must be >= 0. Received: weight={weight}")
        self.weight = float(weight)
        self.network = network if network is None else os.fspath(network)  # a pathlib.Path saves as str
        # A plain namespace: Keras tracking, saving and SavedModel export do not walk it.
        self._vgg16 = types.SimpleNamespace(features=vgg16_features(self.network) if load_network else None)

    def feature_model(self):
        """The frozen `vgg16_features` model, or None for a term loaded from a saved model.

        A method, not a property: Keras' saving reads every attribute of a layer and would save the
        network it found in one.
        """
        return self._vgg16.features

    def call(self, images, reconstructions, training=None):
        """The weighted mean perceptual distance of the batch.

        Args:
            images: float32 tensor `[B, H, W, C]` in [0, 1].
            reconstructions: float32 tensor of the same shape, with gradient to the model.
            training: bool (VGG16 has no layer that trains differently).

        Returns:
            float32 scalar.

        Raises:
            ValueError: the term was loaded from a saved model, without its network.
        """
        del training
        features = self.feature_model()
        if features is None:
            raise ValueError(
                f"This {self.name} term was loaded from a saved model without its VGG16 network; to train "
                f"with it, give the model a new PerceptualLoss(network={self.network!r})."
            )
        return self.weight * tf.reduce_mean(perceptual_distance(features, images, reconstructions))

    def get_config(self):
        config = super().get_config()
        config.update({"weight": self.weight, "network": self.network})
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config, load_network=False)
