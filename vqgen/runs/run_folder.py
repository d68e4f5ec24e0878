"""The files of one training run, in one folder."""

import json
import os
import re
import shutil

from vqgen.runs.atomic_file import write_text_atomically
from vqgen.runs.run_lock import LOCK_NAME
from vqgen.storage import is_remote, refuse_remote_run

# The sections every run's config.json has from the start of stage 1.
RUN_SECTIONS = {"data", "vqvae", "vqvae_training"}
# Names of the temporary files and folders that `atomic_file` writes beside their targets.
TEMPORARY_NAME = re.compile(r"^\..+\.\d+-[0-9a-f]{8}\.tmp")


# The model file and metrics file of each stage; a stage is finished when its model file exists.
STAGE_FILES = {
    "vqvae": ("vqvae.keras", "metrics.csv"),
    "prior": ("prior.keras", "prior_metrics.csv"),
}
STAGES = tuple(STAGE_FILES)


class RunFolder:
    """Names and reads the files of a run folder; every write goes through `atomic_file`.

    Layout:
        config.json            what was trained and how (both stages)
        vqvae.keras            stage-1 model (its presence marks stage 1 finished)
        metrics.csv            stage-1 per-epoch metrics (train and validation)
        reconstructions.png    held-out originals (odd rows) above their reconstructions
        codes/                 the dataset coded by the VQ-VAE, in shards (cache for the prior)
        prior.keras            stage-2 model (its presence marks stage 2 finished)
        prior_metrics.csv      stage-2 per-epoch metrics, including validation bits per code
        checkpoints/STAGE/     weights after every epoch of stage STAGE ("vqvae" or "prior")
        logs/STAGE/            TensorBoard event files of that stage (train/ and validation/)
        backup/STAGE/          the last completed epoch's state while that stage is unfinished
        evaluation.json        the figures of the last `vqgen evaluate`
        evaluation/            its pictures and the cached classifier of its sample figures
        .writer.lock           held by the one process writing the run (`RunLock`), while it runs

    Args:
        path: str or path-like. The folder; local only.

    Raises:
        ValueError: `path` is a URL (`gs://...`): run folders rely on `flock` and atomic renames.

    Example:
    >>> run = RunFolder("runs/digits")
    >>> run.model_path("vqvae")
    'runs/digits/vqvae.keras'
    """

    def __init__(self, path):
        refuse_remote_run(path)
        self.path = os.fspath(path)

    def file(self, name):
        """Returns the path of `name` inside the run folder."""
        return os.path.join(self.path, name)

    config_path = property(lambda self: self.file("config.json"))
    codes_path = property(lambda self: self.file("codes"))  # see vqgen.runs.code_shards
    reconstructions_path = property(lambda self: self.file("reconstructions.png"))

    def model_path(self, stage):
        """The `.keras` file of `stage` ("vqvae" or "prior")."""
        return self.file(STAGE_FILES[stage][0])

    def metrics_path(self, stage):
        """The per-epoch metrics CSV of `stage`."""
        return self.file(STAGE_FILES[stage][1])

    def checkpoints_path(self, stage):
        """The folder of `stage`'s per-epoch weights."""
        return self.file(os.path.join("checkpoints", stage))

    def logs_path(self, stage):
        """The TensorBoard log folder of `stage`."""
        return self.file(os.path.join("logs", stage))

    def backup_path(self, stage):
        """The folder of `stage`'s last completed epoch while the stage is unfinished."""
        return self.file(os.path.join("backup", stage))

    def finished(self, stage):
        """Whether `stage` finished: its model file exists (it is written last, atomically)."""
        return os.path.exists(self.model_path(stage))

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

    def holds(self, path):
        """Whether `path` lies inside this run folder (after resolving links), e.g. `RUN/saved_model`.

        An existing run folder that holds an export's destination is written by that export, so the
        export takes the run's `RunLock`; an export elsewhere only reads the run.

        Args:
            path: str or path-like, existing or not.

        Returns:
            bool; False when the run folder does not exist.

        Example:
        >>> RunFolder("runs/digits").holds("runs/digits/saved_model")  # doctest: +SKIP
        True
        """
        if is_remote(path) or not os.path.isdir(self.path):
            return False
        path, folder = os.path.realpath(path), os.path.realpath(self.path)
        return os.path.commonpath([path, folder]) == folder

    def exists(self):
        """Whether the folder exists and holds anything besides a writer's lock file."""
        return os.path.isdir(self.path) and any(name != LOCK_NAME for name in os.listdir(self.path))

    def clear(self):
        """Deletes everything in the folder except the lock file of the writer doing so (`RunLock`)."""
        if not os.path.isdir(self.path):
            return
        for name in os.listdir(self.path):
            path = self.file(name)
            if name == LOCK_NAME:
                continue
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.remove(path)

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
            raise ValueError(
                f"{self.config_path} is not valid JSON ({error}); restore it or retrain."
            ) from None
        if not isinstance(config, dict) or not RUN_SECTIONS <= set(config):
            raise ValueError(
                f"{self.config_path} is not a vqgen run's config (it lacks {sorted(RUN_SECTIONS)}); "
                "choose another --run folder."
            )
        return config

    def write_config(self, config):
        """Writes `config` (a JSON-serialisable dict) to config.json atomically."""
        write_text_atomically(self.config_path, json.dumps(config, indent=2, sort_keys=True) + "\n")

    def require(self, stage):
        """Raises FileNotFoundError naming the command to run unless `stage` has finished.

        Args:
            stage: "vqvae" or "prior".

        Example:
        >>> RunFolder("runs/digits").require("prior")  # doctest: +SKIP
        """
        if not self.finished(stage):
            command = {"vqvae": "vqgen train", "prior": "vqgen train-prior"}[stage]
            raise FileNotFoundError(
                f"{self.path} has no {os.path.basename(self.model_path(stage))}; run "
                f"`{command} --run {self.path}` first."
            )
