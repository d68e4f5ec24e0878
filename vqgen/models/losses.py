"""The parts of a VQ-VAE's loss besides the quantizer's: a reconstruction loss and extra loss terms.

`VQVAE(reconstruction_loss=..., loss_terms=[...])` takes them as objects, so a new term (a perceptual
loss, or an adversarial one whose discriminator trains with its own optimizer) joins the training
step without changing it.
"""

import keras
import tensorflow as tf

# What `VQVAE` logs besides the quantizer's statistics; a loss term may not take these names.
MODEL_LOG_NAMES = ("loss", "reconstruction_loss", "vq_loss", "psnr")


class PerImageMeanLoss:
    """A reconstruction loss: the mean over images of each image's mean pixel penalty.

    A subclass names the penalty of a pixel error in `penalty`; the loss is computed in float32 (the
    mean per image, then over the batch) whatever the inputs' dtype.

    Example:
    >>> class MeanCubedError(PerImageMeanLoss):
    ...     def penalty(self, error):
    ...         return tf.abs(error) ** 3
    """

    def penalty(self, error):
        """The penalty of each pixel's error.

        Args:
            error: float32 tensor `[B, H, W, C]`, reconstruction minus image.

        Returns:
            float32 tensor of the same shape.
        """
        raise NotImplementedError(f"{type(self).__name__} must define penalty(error)")

    def __call__(self, images, reconstructions):
        """The loss of a batch.

        Args:
            images: float tensor `[B, H, W, C]`.
            reconstructions: float tensor of the same shape.

        Returns:
            float32 scalar.
        """
        error = tf.cast(reconstructions, "float32") - tf.cast(images, "float32")
        return tf.reduce_mean(tf.reduce_mean(self.penalty(error), axis=[1, 2, 3]))

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@keras.saving.register_keras_serializable(package="vqgen")
class MeanSquaredError(PerImageMeanLoss):
    """The mean over images of each image's mean squared pixel error: the paper's reconstruction loss.

    Example:
    >>> MeanSquaredError()(tf.zeros((2, 4, 4, 1)), tf.fill((2, 4, 4, 1), 0.5)).numpy()
    0.25
    """

    def penalty(self, error):
        """The squared error of each pixel."""
        return tf.square(error)


@keras.saving.register_keras_serializable(package="vqgen")
class MeanAbsoluteError(PerImageMeanLoss):
    """The mean over images of each image's mean absolute pixel error: taming-transformers' VQGAN loss.

    Example:
    >>> MeanAbsoluteError()(tf.zeros((2, 4, 4, 1)), tf.fill((2, 4, 4, 1), -0.5)).numpy()
    0.5
    """

    def penalty(self, error):
        """The absolute error of each pixel."""
        return tf.abs(error)


@keras.saving.register_keras_serializable(package="vqgen")
class LossTerm(keras.layers.Layer):
    """A term a `VQVAE` adds to its loss and logs under the layer's `name`.

    A subclass implements `call(images, reconstructions, training=None)`, returning a float32 scalar
    that the model's optimizer minimises with the rest of the loss (gradients flow through
    `reconstructions`). A term with a network of its own, such as a discriminator, keeps that
    network and its optimizer as attributes and overrides `update`: after each training step of the
    model, `update(images, reconstructions)` (the reconstructions without gradient) trains the
    network and returns what to log, under the names `log_names`. The model's optimizer leaves the
    term's weights alone. Like any layer, a term is saved with the model when it implements
    `get_config` for its constructor arguments.

    Args:
        **kwargs: base `keras.layers.Layer` arguments; `name` is the logged name of the term.

    Example:
    >>> class TotalVariation(LossTerm):
    ...     def call(self, images, reconstructions, training=None):
    ...         return 0.01 * tf.reduce_mean(tf.image.total_variation(reconstructions))
    >>> model = VQVAE(input_shape=(28, 28, 1), loss_terms=[TotalVariation(name="tv_loss")])
    """

    # The names of the logs `update` returns.
    log_names = ()
    # The names of logs `call` returns besides the term: such a term's `call` returns a dict holding
    # its value under the layer's name and these.
    call_log_names = ()
    # Whether `call` weighs the term by gradients at the decoder's last layer: the model then passes
    # the keywords `reconstruction_loss` (the batch's) and `gradient_norm` (a function: a loss -> the
    # norm of its gradient with respect to the decoder's last kernel).
    needs_gradient_norm = False

    def update(self, images, reconstructions):
        """Trains the term's own network, if any, after the model's step.

        Args:
            images: float32 tensor `[B, H, W, C]`, the batch.
            reconstructions: float32 tensor, the model's reconstructions of it (no gradient).

        Returns:
            dict of float32 scalars to log, keyed by `log_names` (empty: nothing of its own).
        """
        del images, reconstructions
        return {}


def check_loss_terms(loss_terms, statistic_names):
    """Refuses loss terms a `VQVAE` cannot add or log.

    Args:
        loss_terms: list of `LossTerm`.
        statistic_names: the names the model's quantizer logs.

    Returns:
        `loss_terms` as a list.

    Raises:
        ValueError: a term is not a `LossTerm`, or logs under a name already taken.

    Example:
    >>> check_loss_terms([], ("perplexity", "codes_used"))
    []
    """
    taken = set(MODEL_LOG_NAMES) | set(statistic_names)
    for term in loss_terms:
        if not isinstance(term, LossTerm):
            raise ValueError(f"loss_terms must be LossTerm layers. Received: {term!r}")
        names = (term.name, *term.call_log_names, *term.log_names)
        clashes = [name for name in names if name in taken]
        if clashes:
            raise ValueError(
                f"The loss term {term.name!r} logs {', '.join(clashes)}, a name already logged; give it "
                "another name."
            )
        taken.update(names)
    return list(loss_terms)


# The reconstruction losses `VQVAESettings.reconstruction_loss` names (`--reconstruction-loss`).
RECONSTRUCTION_LOSSES = {"mse": MeanSquaredError, "l1": MeanAbsoluteError}
