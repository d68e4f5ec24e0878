"""prior.settings: PixelCNNSettings is the one home of PixelCNN's defaults."""

import dataclasses
import inspect
import subprocess
import sys

import pytest

import prior
from prior.settings import PIXELCNN_DEFAULTS, PixelCNNSettings


def test_pixelcnn_signature_defaults_are_the_settings_defaults():
    parameters = inspect.signature(prior.PixelCNN.__init__).parameters
    fields = dataclasses.fields(PixelCNNSettings)
    assert [field.name for field in fields] == ["num_layers", "filters", "kernel_size"]
    for field in fields:
        assert parameters[field.name].default == field.default == getattr(PIXELCNN_DEFAULTS, field.name)
    model = prior.PixelCNN(num_embeddings=4, grid_shape=(2, 2))
    assert {field.name: getattr(model, field.name) for field in fields} == dataclasses.asdict(
        PIXELCNN_DEFAULTS
    )


def test_every_field_has_help_and_settings_are_frozen():
    for field in dataclasses.fields(PixelCNNSettings):
        assert isinstance(field.metadata["help"], str) and field.metadata["help"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        PIXELCNN_DEFAULTS.filters = 1
    assert prior.PixelCNNSettings is PixelCNNSettings and "PixelCNNSettings" in prior.__all__


def test_settings_build_a_pixelcnn():
    settings = PixelCNNSettings(num_layers=2, filters=8, kernel_size=3)
    model = prior.PixelCNN(num_embeddings=4, grid_shape=(2, 2), **dataclasses.asdict(settings))
    assert (model.num_layers, model.filters, model.kernel_size) == (2, 8, 3)
    assert len(model.gated_blocks) == 2


def test_settings_module_needs_neither_tensorflow_nor_keras():
    script = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('settings', {inspect.getfile(PixelCNNSettings)!r})\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "assert module.PIXELCNN_DEFAULTS.num_layers >= 1\n"
        "print(sorted(name for name in ('tensorflow', 'keras', 'numpy') if name in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
