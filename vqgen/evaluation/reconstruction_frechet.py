"""rFD: the Fréchet distance between held-out images and their reconstructions in the evaluation
classifier's feature space (as the sample Fréchet distance, `vqgen.runs.evaluate_run`, measures
samples), the distribution-level fidelity measure VQGAN-class tokenizers report (there with
Inception features, as rFID)."""

from vqgen.evaluation.classifier import classifier_predictions
from vqgen.evaluation.frechet import frechet_distance


def reconstruction_frechet_distance(classifier, originals, reconstructions):
    """The Fréchet distance between a classifier's features of images and of their reconstructions.

    Both sets go through `classifier_predictions` (the `features` layer of a `build_classifier`
    model) and `frechet_distance` compares the two feature sets: 0 when the reconstructions are the
    images; it grows as they lose what the classifier's features see (strokes, textures), even where
    the pixel error is small.

    Args:
        classifier: a trained `build_classifier` model (`train_classifier`).
        originals: float array `[N, H, W, C]` in [0, 1], N >= 2.
        reconstructions: float array of the same shape.

    Returns:
        float >= 0.

    Raises:
        ValueError: fewer than 2 images.

    Example:
    >>> classifier = train_classifier(train_images, train_labels, 10)  # doctest: +SKIP
    >>> reconstruction_frechet_distance(classifier, images, vqvae.reconstruct(images))  # doctest: +SKIP
    3.1
    """
    _, original_features = classifier_predictions(classifier, originals)
    _, reconstruction_features = classifier_predictions(classifier, reconstructions)
    return frechet_distance(original_features, reconstruction_features)
