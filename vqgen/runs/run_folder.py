"""The files of one training run, in one folder."""

import json
import os
import re
import shutil

from vqgen.runs.atomic_file import write_text_atomically


# The sections every run's config.json has from the start of stage 1.
RUN_SECTIONS = {"data", "vqvae", "vqvae_training"}
# Names of the temporary files and folders that `atomic_file` writes beside their targets.
TEMPORARY_NAME = re.compile(r"^\..+\.\d+-[0-9a-f]{8}\.tmp")


class RunFolder:
    """Names and reads the files of a run folder; every write goes through `atomic_file`.

    Layout:
        config.json            what was trained and how (both stages)
        vqvae.keras            stage-1 model
        metrics.csv            stage-1 per-epoch metrics (train and validation)
        reconstructions.png    held-out originals (odd rows) above their reconstructions
        checkpoints/           stage-1 weights after every epoch
        backup/                the last completed epoch's state while a stage is unfinished
        logs/                  TensorBoard event files
        codes.npz              the dataset coded by the VQ-VAE (cache for the prior)
        prior.keras            stage-2 model
        prior_metrics.csv      stage-2 per-epoch metrics, including validation bits per code

    Args:
        path: str or path-like. The folder.

    Example:
    >>> run = RunFolder("runs/digits")
    >>> run.vqvae_path
    'runs/digits/vqvae.keras'
    """

    def __init__(self, path):
        self.path = os.fspath(path)

    def file(self, name):
        """Returns the path of `name` inside the run folder."""
        return os.path.join(self.path, name)

    config_path = property(lambda self: self.file("config.json"))
    vqvae_path = property(lambda self: self.file("vqvae.keras"))
    prior_path = property(lambda self: self.file("prior.keras"))
    codes_path = property(lambda self: self.file("codes.npz"))
    metrics_path = property(lambda self: self.file("metrics.csv"))
    prior_metrics_path = property(lambda self: self.file("prior_metrics.csv"))
    reconstructions_path = property(lambda self: self.file("reconstructions.png"))
    checkpoints_path = property(lambda self: self.file("checkpoints"))
    logs_path = property(lambda self: self.file("logs"))

    def backup_path(self, stage):
        """Folder of the Keras BackupAndRestore state of `stage` ("vqvae" or "prior")."""
        return self.file(os.path.join("backup", stage))

    def remove_backup(self, stage):
        """Deletes the resume state of a finished `stage` (and `backup/` once empty)."""
        shutil.rmtree(self.backup_path(stage), ignore_errors=True)
        backups = self.file("backup")
        if os.path.isdir(backups) and not os.listdir(backups):
            os.rmdir(backups)

    def remove_stale_temporaries(self):
        """Deletes the temporary files and folders that a killed process left half-written."""
        stale = [
            os.path.join(root, name)
            for root, folders, files in os.walk(self.path)
            for name in folders + files
            if TEMPORARY_NAME.match(name)
        ]
        for path in stale:
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            elif os.path.exists(path):
                os.remove(path)

    def exists(self):
        """Whether the folder exists and holds anything."""
        return os.path.isdir(self.path) and bool(os.listdir(self.path))

    def read_config(self):
        """Returns the run's config.json as a dict.

        Raises:
            FileNotFoundError: the folder or its config.json is missing.
            ValueError: the config is not valid JSON or not a vqgen run's.
        """
        if not os.path.isdir(self.path):
            raise FileNotFoundError(
                f"Run directory {self.path} does not exist; train one with `vqgen train --run {self.path}`."
            )
        if not os.path.isfile(self.config_path):
            raise FileNotFoundError(
                f"{self.path} has no config.json, so it is not a vqgen run; train one with "
                f"`vqgen train --run {self.path}`."
            )
        try:
            with open(self.config_path, encoding="utf-8") as stream:
                config = json.load(stream)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(f"{self.config_path} is not valid JSON ({error}); restore it or retrain.") from None
        if not isinstance(config, dict) or not RUN_SECTIONS <= set(config):
            raise ValueError(
                f"{self.config_path} is not a vqgen run's config (it lacks {sorted(RUN_SECTIONS)}); "
                "choose another --run folder."
            )
        return config

    def write_config(self, config):
        """Writes `config` (a JSON-serialisable dict) to config.json atomically."""
        write_text_atomically(self.config_path, json.dumps(config, indent=2, sort_keys=True) + "\n")

    def require(self, path, stage_command):
        """Raises FileNotFoundError naming the missing stage unless `path` exists.

        Args:
            path: the file the next step needs.
            stage_command: the command that creates it, e.g. "vqgen train-prior".
        """
        if not os.path.exists(path):
            raise FileNotFoundError(
                f"{self.path} has no {os.path.basename(path)}; run `{stage_command} --run {self.path}` first."
            )
