"""Measures of a trained run, each in a small module free of run folders and of the `prior` package.

image_quality.py    `psnr`, `ssim`: reconstruction quality per image
codebook_usage.py   `codebook_usage`, `tuple_usage`, `usage_histogram_picture`: how a dataset uses codes
likelihood.py       `bits_per_code`, `bits_per_dimension`: the prior's likelihood in paper units
frechet.py          `feature_statistics`, `frechet_distance`: distance between two feature sets
classifier.py       `train_classifier`, `classifier_predictions`: the small classifier for samples
"""

from vqgen.evaluation.classifier import build_classifier, classifier_predictions, train_classifier
from vqgen.evaluation.codebook_usage import codebook_usage, tuple_usage, usage_histogram_picture
from vqgen.evaluation.frechet import feature_statistics, frechet_distance
from vqgen.evaluation.image_quality import psnr, ssim
from vqgen.evaluation.likelihood import bits_per_code, bits_per_dimension, decoder_bits, decoder_scale

__all__ = [
    "bits_per_code",
    "bits_per_dimension",
    "build_classifier",
    "classifier_predictions",
    "codebook_usage",
    "decoder_bits",
    "decoder_scale",
    "feature_statistics",
    "frechet_distance",
    "psnr",
    "ssim",
    "train_classifier",
    "tuple_usage",
    "usage_histogram_picture",
]
