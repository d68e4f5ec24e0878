"""`vqgen train` and `vqgen train-prior` (each prior kind) under `--strategy multiworker`, two worker
processes on 127.0.0.1, end with the weights of a single-process run of the same commands.

Why the single process is fed the same global batches without any test-only option: under several
workers, every worker computes the epoch's order that a single process uses (the permutation of
`(seed, epoch)`; source order for validation), cuts it into global batches, and reads only its own
replicas' slices of each (`vqgen.data.worker_shares.worker_rows`). So global batch `s` of the
multi-worker run is worker 0's batch `s` followed by worker 1's batch `s`, which is batch `s` of the
single process. The split sizes (16 training, 8 validation images) and the batch size (4, two per
worker) are chosen so that no batch is partial: a single process serves a smaller last batch where
several workers complete it with the epoch's first images. The priors run without dropout, and
MaskGIT's masks are each replica's rows of one draw for the global batch
(`tf_distribute_helpers.replica_rows_uniform`), the draw one device makes.

Each process (the two workers, and the single-process reference) runs all four commands in turn, so
the whole comparison costs three interpreter launches. Besides the weights, each process records
which images (pixel (0, 0) of image `i` is `10 * i`) it reads in each training and validation step,
through the same `epoch_batches` / `batches` calls the training makes.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from test_distributed import free_ports  # tests/ is on sys.path (pytest's default prepend import mode)

KINDS = ("pixelcnn", "transformer", "maskgit")
BATCH = 4
TRAIN_COUNT, VALIDATION_COUNT = 16, 8
FRACTION, SEED = 0.25, 0

RUN_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    import numpy as np
    from vqgen.cli import main
    from vqgen.runs.model_files import load_stage_model
    from vqgen.runs.run_folder import RunFolder
    from vqgen.runs.strategies import make_strategy
    from vqgen.runs.train_vqvae import stream_splits

    run, folder, strategy, out = sys.argv[1:5]
    common = ["--strategy", strategy, "--quiet"]
    prior_options = {
        "pixelcnn": ["--num-layers", "2", "--filters", "8"],
        "transformer": ["--transformer-num-layers", "1", "--transformer-hidden-dim", "8",
                        "--transformer-num-heads", "2", "--transformer-intermediate-dim", "16",
                        "--transformer-dropout", "0"],
        "maskgit": ["--maskgit-num-layers", "1", "--maskgit-hidden-dim", "8", "--maskgit-num-heads", "2",
                    "--maskgit-intermediate-dim", "16", "--maskgit-dropout", "0"],
    }
    train = ["train", "--run", run, "--data", folder, "--epochs", "1", "--batch-size", "BATCH",
             "--validation-fraction", "FRACTION", "--seed", "SEED", "--precision", "float32",
             "--num-embeddings", "8", "--embedding-dim", "4", "--hidden-channels", "8",
             "--residual-channels", "4", "--num-residual-blocks", "1"]
    assert main(train + common) == 0
    vqvae = load_stage_model(RunFolder(run), "vqvae")
    arrays = {"vqvae": np.concatenate([w.numpy().ravel() for w in vqvae.weights])}
    metrics = {"vqvae": open(os.path.join(run, "metrics.csv")).read()}
    for kind in KINDS:
        prior = ["train-prior", "--run", run, "--prior", kind, "--overwrite", "--prior-epochs", "1",
                 "--prior-batch-size", "BATCH", "--prior-precision", "float32", *prior_options[kind]]
        assert main(prior + common) == 0
        model = load_stage_model(RunFolder(run), "prior")
        arrays[kind] = np.concatenate([w.numpy().ravel() for w in model.weights])
        metrics[kind] = open(os.path.join(run, "prior_metrics.csv")).read()

    # The images each step reads, by the calls train_vqvae makes (pixel (0, 0) of image i is 10 * i).
    distribution = make_strategy(strategy)
    train_part, validation_part = stream_splits(json.load(open(os.path.join(run, "config.json")))["data"], 0)

    def identities(batches):
        return [sorted(int(round(v * 25.5)) for v in local.numpy()[:, 0, 0, 0])
                for batch in batches for local in distribution.experimental_local_results(batch)]

    epoch, steps = train_part.epoch_batches(BATCH, SEED, 0, 1, distribution)
    batches = iter(epoch)
    arrays["train_ids"] = np.array(identities(next(batches) for _ in range(steps)))
    arrays["validation_ids"] = np.array(identities(validation_part.batches(BATCH, strategy=distribution)))
    np.savez(out, **arrays)
    with open(out + ".json", "w") as stream:
        json.dump(metrics, stream)
    """
)


def make_folder(folder):
    """Images named so the seeded split holds exactly TRAIN_COUNT training and VALIDATION_COUNT
    validation images; image `i` (in name order) has pixel (0, 0) = 10 * i, the rest random."""
    from PIL import Image

    from vqgen.data.image_stream import split_fractions

    names = [f"image{index:03d}.png" for index in range(200)]
    held_out = split_fractions(names, SEED) < FRACTION
    chosen = sorted(
        [n for n, out in zip(names, held_out) if not out][:TRAIN_COUNT]
        + [n for n, out in zip(names, held_out) if out][:VALIDATION_COUNT]
    )
    rng = np.random.default_rng(0)
    for index, name in enumerate(chosen):
        pixels = rng.integers(0, 256, size=(8, 8), dtype=np.uint8)
        pixels[0, 0] = 10 * index
        Image.fromarray(pixels).save(folder / name)


def launch(run, folder, strategy, out, environment):
    script = RUN_SCRIPT
    for name, value in (("KINDS", repr(KINDS)), ("BATCH", str(BATCH)), ("FRACTION", str(FRACTION))):
        script = script.replace(name, value)
    script = script.replace("SEED", str(SEED))
    return subprocess.Popen(
        [sys.executable, "-c", script, str(run), str(folder), strategy, str(out)],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """`[worker 0, worker 1, single process]`, each `(arrays, metrics CSV texts)`: the final weights of
    stage 1 and of each prior kind, and the image identities of each step's batches."""
    folder = tmp_path_factory.mktemp("images")
    make_folder(folder)
    outputs = tmp_path_factory.mktemp("runs")
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    quiet = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": os.getcwd()}
    processes = []
    for index in range(2):
        config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        out = outputs / f"worker{index}.npz"
        processes.append(
            launch(outputs / f"run{index}", folder, "multiworker", out, {**quiet, "TF_CONFIG": config})
        )
    processes.append(launch(outputs / "single", folder, "default", outputs / "single.npz", quiet))
    try:
        results = [process.communicate(timeout=900) for process in processes]
    finally:
        for process in processes:  # every process exits, even when one hangs
            if process.poll() is None:
                process.kill()
                process.wait()
    for process, (_, stderr) in zip(processes, results):
        assert process.returncode == 0, stderr[-3000:]
    loaded = []
    for name in ("worker0", "worker1", "single"):
        with open(outputs / f"{name}.npz.json") as stream:
            loaded.append((dict(np.load(outputs / f"{name}.npz")), json.load(stream)))
    return loaded


STAGES = ("vqvae", *KINDS)


@pytest.mark.slow
@pytest.mark.parametrize("stage", STAGES)
def test_each_worker_ends_with_the_weights_of_a_single_process_run(runs, stage):
    single = runs[2][0][stage]
    for arrays, _ in runs[:2]:
        assert arrays[stage].shape == single.shape
        assert np.max(np.abs(arrays[stage] - single)) < 1e-5


@pytest.mark.slow
@pytest.mark.parametrize("stage", STAGES)
def test_validation_metrics_of_the_workers_are_those_of_the_whole_split(runs, stage):
    def rows(text):
        lines = text.strip().splitlines()
        header = lines[0].split(",")
        return [dict(zip(header, map(float, line.split(",")))) for line in lines[1:]]

    single = rows(runs[2][1][stage])
    names = [name for name in single[0] if name.startswith("val_")]
    assert names  # the CSV has validation columns
    for _, metrics in runs[:2]:
        for worker_row, single_row in zip(rows(metrics[stage]), single):
            for name in names:
                assert abs(worker_row[name] - single_row[name]) < 1e-5, (stage, name)


@pytest.mark.slow
@pytest.mark.parametrize("part", ("train_ids", "validation_ids"))
def test_workers_read_disjoint_shares_that_make_up_the_single_process_batches(runs, part):
    first, second, single = (arrays[part] for arrays, _ in runs)
    count = TRAIN_COUNT if part == "train_ids" else VALIDATION_COUNT
    assert single.shape == (count // BATCH, BATCH) and first.shape == second.shape == (
        count // BATCH,
        BATCH // 2,
    )
    assert not set(first.ravel()) & set(second.ravel())  # no image read by both workers
    for step, expected in enumerate(single):  # global batch s = worker 0's batch s + worker 1's batch s
        assert sorted([*first[step], *second[step]]) == sorted(expected)
    assert len(set(single.ravel())) == count  # each image of the split once
