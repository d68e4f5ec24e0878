"""prior.settings: PixelCNNSettings is the one home of PixelCNN's defaults."""

import dataclasses
import inspect
import subprocess
import sys

import pytest

import prior
from prior.settings import PIXELCNN_DEFAULTS, PIXELCNN_MIN_LAYERS, PixelCNNSettings


def test_pixelcnn_signature_defaults_are_the_settings_defaults():
    parameters = inspect.signature(prior.PixelCNN.__init__).parameters
    fields = dataclasses.fields(PixelCNNSettings)
    assert [field.name for field in fields] == ["num_layers", "filters", "kernel_size"]
    for field in fields:
        assert parameters[field.name].default == field.default == getattr(PIXELCNN_DEFAULTS, field.name)
    model = prior.PixelCNN(num_embeddings=4, grid_shape=(2, 2))
    assert {field.name: getattr(model, field.name) for field in fields} == {
        **dataclasses.asdict(PIXELCNN_DEFAULTS),
        "num_layers": PIXELCNN_MIN_LAYERS,  # None: enough for the grid, at least the minimum
    }


@pytest.mark.parametrize(
    "grid_shape, kernel_size, num_layers",
    [((7, 7), 5, 5), ((16, 16), 5, 8), ((32, 32), 5, 16), ((32, 32), 3, 31)],
)
def test_default_depth_is_chosen_from_the_grid(grid_shape, kernel_size, num_layers):
    assert PIXELCNN_DEFAULTS.num_layers is None
    model = prior.PixelCNN(num_embeddings=4, grid_shape=grid_shape, filters=1, kernel_size=kernel_size)
    assert model.num_layers == num_layers == model.get_config()["num_layers"]


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
        "assert module.PIXELCNN_MIN_LAYERS >= 1\n"
        "print(sorted(name for name in ('tensorflow', 'keras', 'numpy') if name in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
