"""Measures of a trained run, each in a small module free of run folders and of the `prior` package.

image_quality.py           `psnr`, `ssim`, `high_frequency_ratio`: reconstruction quality
codebook_usage.py          `codebook_usage`, `tuple_usage`, `usage_histogram_picture`: how a set uses codes
likelihood.py              `bits_per_code`, `bits_per_dimension`: the prior's likelihood in paper units
frechet.py                 `feature_statistics`, `frechet_distance`: distance between two feature sets
classifier.py              `train_classifier`, `classifier_predictions`: the small classifier for samples
reconstruction_frechet.py  `reconstruction_frechet_distance`: rFD, reconstructions against originals
"""

from vqgen.evaluation.classifier import build_classifier, classifier_predictions, train_classifier
from vqgen.evaluation.codebook_usage import codebook_usage, tuple_usage, usage_histogram_picture
from vqgen.evaluation.frechet import feature_statistics, frechet_distance
from vqgen.evaluation.image_quality import high_frequency_ratio, psnr, ssim
from vqgen.evaluation.likelihood import bits_per_code, bits_per_dimension, decoder_bits, decoder_scale
from vqgen.evaluation.reconstruction_frechet import reconstruction_frechet_distance

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
    "high_frequency_ratio",
    "psnr",
    "reconstruction_frechet_distance",
    "ssim",
    "train_classifier",
    "tuple_usage",
    "usage_histogram_picture",
]
