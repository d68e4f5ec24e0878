"""Adversarial training of a VQ-VAE: a PatchGAN discriminator and an adaptively weighted generator term.

Reference: Esser, Rombach and Ommer, "Taming Transformers for High-Resolution Image Synthesis" (2021),
Section 3.1 and taming-transformers' `VQLPIPSWithDiscriminator`.
"""

import keras
import tensorflow as tf

from tf_distribute_helpers import scale_loss_for_replicas
from vqgen.models.discriminator import PatchDiscriminator
from vqgen.models.losses import LossTerm

ADVERSARIAL_LOSSES = ("hinge", "non-saturating")
# The adaptive weight's guard against a vanishing adversarial gradient and its clip (taming's values).
GRADIENT_NORM_EPSILON = 1e-4
MAX_ADAPTIVE_WEIGHT = 1e4


def discriminator_loss(logits_real, logits_fake, kind="hinge"):
    """The discriminator's loss on patch logits of real and reconstructed images.

    hinge: `mean(relu(1 - logits_real)) + mean(relu(1 + logits_fake))` (taming halves this sum; the
    factor only rescales the discriminator's learning rate). non-saturating:
    `mean(softplus(-logits_real)) + mean(softplus(logits_fake))`, the cross-entropy of a sigmoid.

    Args:
        logits_real: float tensor, the discriminator's logits on real images.
        logits_fake: float tensor, its logits on reconstructions.
        kind: str, one of `ADVERSARIAL_LOSSES`. Defaults to `"hinge"`.

    Returns:
        float32 scalar.

    Example:
    >>> float(discriminator_loss(tf.constant([2.0, 0.0]), tf.constant([-2.0, 0.5])))
    1.25
    """
    logits_real = tf.cast(logits_real, "float32")
    logits_fake = tf.cast(logits_fake, "float32")
    if kind == "hinge":
        return tf.reduce_mean(tf.nn.relu(1.0 - logits_real)) + tf.reduce_mean(tf.nn.relu(1.0 + logits_fake))
    return tf.reduce_mean(tf.nn.softplus(-logits_real)) + tf.reduce_mean(tf.nn.softplus(logits_fake))


def generator_loss(logits_fake, kind="hinge"):
    """The generator's (the VQ-VAE's) adversarial loss on the logits of its reconstructions.

    hinge: `-mean(logits_fake)`; non-saturating: `mean(softplus(-logits_fake))`.

    Args:
        logits_fake: float tensor, the discriminator's logits on reconstructions.
        kind: str, one of `ADVERSARIAL_LOSSES`. Defaults to `"hinge"`.

    Returns:
        float32 scalar.

    Example:
    >>> float(generator_loss(tf.constant([1.0, 3.0])))
    -2.0
    """
    logits_fake = tf.cast(logits_fake, "float32")
    if kind == "hinge":
        return -tf.reduce_mean(logits_fake)
    return tf.reduce_mean(tf.nn.softplus(-logits_fake))


@keras.saving.register_keras_serializable(package="vqgen")
class AdversarialLoss(LossTerm):
    """The adversarial term of a VQGAN-style VQ-VAE, with its discriminator and that one's optimizer.

    The term added to the model's loss is `lambda * generator_loss(D(reconstructions))` with the
    adaptive weight `lambda = weight * clip(|g_rec| / (|g_adv| + 1e-4), 0, 1e4)` (no gradient), where
    `g_rec` and `g_adv` are the gradients of the reconstruction loss and of the generator loss with
    respect to the decoder's last kernel (the model supplies their norms: `needs_gradient_norm`).
    After each model step, `update` trains the discriminator `D` (a `PatchDiscriminator`) on the
    batch and its reconstructions with its own Adam optimizer (beta_1 0.5, beta_2 0.9, as taming).
    For the first `start` steps `lambda` is 0 and the discriminator's gradients are zero, so Adam
    leaves its weights unchanged (its step count still advances). Logs `adversarial_weight`
    (`lambda`), and from `update` `discriminator_loss` and the mean logits `logits_real` and
    `logits_fake`.

    Args:
        weight: float >= 0. The factor of the adaptive weight. Defaults to 1.0.
        start: int >= 0. Model training steps before the term and the discriminator start. Defaults
            to 0.
        loss: str, `"hinge"` or `"non-saturating"`. Defaults to `"hinge"`.
        learning_rate: float. The discriminator's Adam learning rate. Defaults to 2e-3.
        discriminator: a Keras layer mapping images to logits, or None for `PatchDiscriminator()`.
        **kwargs: base `LossTerm` arguments; `name` defaults to `"adversarial_loss"`, `dtype` to
            `"float32"` (the discriminator follows the global dtype policy).

    Raises:
        ValueError: a negative `weight` or `start`, or an unknown `loss`.

    Example:
    >>> model = VQVAE(input_shape=(28, 28, 1), loss_terms=[AdversarialLoss(weight=0.5, start=1000)])
    """

    needs_gradient_norm = True
    call_log_names = ("adversarial_weight",)
    log_names = ("discriminator_loss", "logits_real", "logits_fake")

    def __init__(self, weight=1.0, start=0, loss="hinge", learning_rate=2e-3, discriminator=None, **kwargs):
        kwargs.setdefault("name", "adversarial_loss")
        # The term itself computes in float32, so the losses and the gradient norms it is given keep
        # their precision; its discriminator follows the global dtype policy (mixed precision).
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if weight < 0:
            raise ValueError(f"The adversarial weight must be >= 0. Received: weight={weight}")
        if start < 0:
            raise ValueError(f"The adversarial start must be a step count >= 0. Received: start={start}")
        if loss not in ADVERSARIAL_LOSSES:
            raise ValueError(f"loss must be one of {', '.join(ADVERSARIAL_LOSSES)}. Received: loss={loss!r}")
        self.weight = float(weight)
        self.start = int(start)
        self.loss = loss
        self.learning_rate = float(learning_rate)
        self.discriminator = discriminator or PatchDiscriminator(name="discriminator")
        self.optimizer = keras.optimizers.Adam(learning_rate, beta_1=0.5, beta_2=0.9)

    def build(self, input_shape):
        if not self.discriminator.built:  # a deserialized discriminator comes built
            self.discriminator.build(input_shape)
        self.optimizer.build(self.discriminator.trainable_variables)
        self.steps = self.add_weight(
            shape=(),
            dtype="int64",
            initializer="zeros",
            trainable=False,
            name="steps",
            aggregation="only_first_replica",
        )

    def _active(self):
        """1.0 from step `start` on, else 0.0."""
        return tf.cast(self.steps >= self.start, "float32")

    def call(self, images, reconstructions, training=None, reconstruction_loss=None, gradient_norm=None):
        """The weighted generator term and the adaptive weight.

        Args:
            images: float32 tensor `[B, H, W, C]` (unused: the generator term sees reconstructions).
            reconstructions: float32 tensor, with gradient to the model.
            training: bool.
            reconstruction_loss: float32 scalar, the model's reconstruction loss of this batch.
            gradient_norm: function `loss -> float32 scalar`, the norm of the gradient of `loss` with
                respect to the decoder's last kernel.

        Returns:
            dict: the term under the layer's name and `adversarial_weight`.
        """
        del images
        adversarial = generator_loss(self.discriminator(reconstructions, training=training), self.loss)
        ratio = gradient_norm(reconstruction_loss) / (gradient_norm(adversarial) + GRADIENT_NORM_EPSILON)
        weight = tf.stop_gradient(
            tf.clip_by_value(ratio, 0.0, MAX_ADAPTIVE_WEIGHT) * self.weight * self._active()
        )
        return {self.name: weight * adversarial, "adversarial_weight": weight}

    def update(self, images, reconstructions):
        """One step of the discriminator on real images and reconstructions (zero before `start`).

        Args:
            images: float32 tensor `[B, H, W, C]`.
            reconstructions: float32 tensor of the same shape, without gradient.

        Returns:
            dict of `discriminator_loss`, `logits_real` and `logits_fake` (means).
        """
        variables = self.discriminator.trainable_variables
        with tf.GradientTape() as tape:
            logits_real = self.discriminator(images, training=True)
            logits_fake = self.discriminator(reconstructions, training=True)
            loss = discriminator_loss(logits_real, logits_fake, self.loss)
            # Scaled inside the tape: a scaling the tape did not record would cut the gradient.
            scaled_loss = scale_loss_for_replicas(loss)
        gradients = tape.gradient(scaled_loss, variables)
        active = self._active()
        self.optimizer.apply_gradients(
            [(gradient * active, variable) for gradient, variable in zip(gradients, variables)]
        )
        self.steps.assign_add(1)
        return {
            "discriminator_loss": loss,
            "logits_real": tf.reduce_mean(logits_real),
            "logits_fake": tf.reduce_mean(logits_fake),
        }

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "weight": self.weight,
                "start": self.start,
                "loss": self.loss,
                "learning_rate": self.learning_rate,
                "discriminator": keras.saving.serialize_keras_object(self.discriminator),
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["discriminator"] = keras.saving.deserialize_keras_object(config["discriminator"])
        return cls(**config)
