"""A small convolutional classifier whose penultimate layer is the feature space for sample metrics.

Trained on a run's training split, it judges samples the way FID's Inception network does for
natural images, at the scale of this toolkit's datasets: the agreement of conditional samples with
their requested class, and Fréchet distances between its features of two image sets.
"""

import keras
import numpy as np

FEATURES_LAYER = "features"


def build_classifier(image_shape, num_classes, feature_dim=64):
    """Two stride-2 convolutions, a `features` layer and the class logits.

    Args:
        image_shape: `(H, W, C)`.
        num_classes: int >= 2.
        feature_dim: int. Width of the `features` layer. Defaults to 64.

    Returns:
        An uncompiled `keras.Model` from float images in [0, 1] to logits `[N, num_classes]`.
    """
    inputs = keras.Input(image_shape)
    x = keras.layers.Conv2D(32, 3, strides=2, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv2D(64, 3, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.Flatten()(x)
    features = keras.layers.Dense(feature_dim, activation="relu", name=FEATURES_LAYER)(x)
    logits = keras.layers.Dense(num_classes, name="logits")(features)
    return keras.Model(inputs, logits, name="evaluation_classifier")


def train_classifier(images, labels, num_classes, epochs=3, batch_size=64, seed=0):
    """Trains `build_classifier` on float images in [0, 1] with their labels (Adam, 1e-3).

    Args:
        images: float32 array `[N, H, W, C]` in [0, 1].
        labels: int array `[N]` in `[0, num_classes)`.
        num_classes: int.
        epochs: int. Defaults to 3.
        batch_size: int. Defaults to 64.
        seed: int. Fixes the initialisation and the data order.

    Returns:
        The trained `keras.Model`.
    """
    keras.utils.set_random_seed(seed)
    model = build_classifier(images.shape[1:], num_classes)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(images, np.asarray(labels, np.int32), epochs=epochs, batch_size=batch_size, verbose=0)
    return model


def classifier_predictions(model, images, batch_size=256):
    """`(predicted classes int [N], features float32 [N, F])` of float images in [0, 1]."""
    both = keras.Model(model.inputs, [model.outputs[0], model.get_layer(FEATURES_LAYER).output])
    images = np.asarray(images, np.float32)
    # Eager calls: `predict` would trace a new function for every (model, batch shape) it meets.
    outputs = [
        both([images[start : start + batch_size]], training=False)
        for start in range(0, len(images), batch_size)
    ]
    logits = np.concatenate([np.asarray(logits) for logits, _ in outputs])
    features = np.concatenate([np.asarray(features) for _, features in outputs])
    return np.argmax(logits, axis=-1), features
