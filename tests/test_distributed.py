"""Data-parallel training under tf.distribute matches single-device training."""

import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest

MIRRORED_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from vqgen import VQVAE
    from vqgen.models.adversarial_loss import AdversarialLoss
    from vqgen.models.discriminator import PatchDiscriminator

    images = np.random.default_rng(0).uniform(size=(16, 8, 8, 1)).astype("float32")

    def one_step(strategy, ema, quantizer="vq", adversarial=False):
        with strategy.scope():
            keras.utils.set_random_seed(1)
            terms = []
            if adversarial:  # a discriminator, its optimizer and the adaptive weight, on from step 0
                discriminator = PatchDiscriminator(filters=4, name="discriminator")
                terms = [AdversarialLoss(weight=0.5, discriminator=discriminator)]
            model = VQVAE(input_shape=(8, 8, 1), num_embeddings=8, embedding_dim=4, hidden_channels=8,
                          residual_channels=4, num_residual_blocks=1, ema=ema, restart_after_steps=1, seed=1,
                          init_from_data=True, quantizer=quantizer, levels=[5, 4, 3], loss_terms=terms)
            model.compile(optimizer=keras.optimizers.SGD(0.5))
        before = [v.numpy().copy() for v in model.quantizer.weights]
        state = [v for term in model.loss_terms for v in term.discriminator.weights]
        state_before = [v.numpy().copy() for v in state]
        # Two steps: the codebook drawn from the first batch's rows, then codes unused in a step re-drawn.
        model.fit(tf.data.Dataset.from_tensor_slices(images).batch(8), epochs=1, verbose=0, shuffle=False)
        # The step moved the codebook, or FSQ's running statistics, and the discriminator.
        assert np.max(np.abs(model.quantizer.weights[0].numpy() - before[0])) > 1e-4
        assert all(np.max(np.abs(v.numpy() - old)) > 1e-6 for v, old in zip(state, state_before))
        optimizers = [v for term in model.loss_terms for v in term.optimizer.variables]
        return [v.numpy() for v in model.weights + optimizers]

    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert mirrored.num_replicas_in_sync == 2
    cases = (("ema", True, "vq", False), ("gradient", False, "vq", False), ("fsq", True, "fsq", False),
             ("adversarial", True, "vq", True))
    for name, ema, quantizer, adversarial in cases:
        single = one_step(tf.distribute.get_strategy(), ema, quantizer, adversarial)
        distributed = one_step(mirrored, ema, quantizer, adversarial)
        assert len(single) == len(distributed)
        worst = max(float(np.max(np.abs(a - b))) for a, b in zip(single, distributed))
        print(name, "max difference", worst)
        assert worst < 1e-5, worst
    """
)


@pytest.mark.slow
def test_mirrored_step_equals_single_device_step_with_ema_and_gradient_codebooks_fsq_and_a_discriminator():
    result = subprocess.run(
        [sys.executable, "-c", MIRRORED_SCRIPT], capture_output=True, text=True, timeout=240
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ema max difference" in result.stdout and "gradient max difference" in result.stdout
    assert "fsq max difference" in result.stdout and "adversarial max difference" in result.stdout


WORKER_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import tensorflow as tf
    import keras
    import prior
    from vqgen import VQVAE
    from vqgen.data import stream_images
    from vqgen.runs.strategies import make_strategy

    strategy = make_strategy("multiworker")
    out, folder = sys.argv[1:]

    # Both stages trained data-parallel: they must end identical on every worker.
    with strategy.scope():
        keras.utils.set_random_seed(2)
        model = VQVAE(input_shape=(8, 8, 1), num_embeddings=16, embedding_dim=4, hidden_channels=8,
                      residual_channels=4, num_residual_blocks=1, ema=True, restart_after_steps=1, seed=2)
        model.compile(optimizer=keras.optimizers.Adam(1e-2))
    images = np.random.default_rng(0).uniform(size=(64, 8, 8, 1)).astype("float32")
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    data = tf.data.Dataset.from_tensor_slices(images).batch(16).repeat().with_options(options)
    model.fit(data, epochs=2, steps_per_epoch=3, verbose=0, shuffle=False)
    codes = model.encode(images)
    with strategy.scope():
        pixelcnn = prior.PixelCNN(num_embeddings=16, grid_shape=(2, 2), num_layers=2, filters=8)
        pixelcnn.compile(optimizer=keras.optimizers.Adam(1e-2))
    grids = tf.data.Dataset.from_tensor_slices(codes).batch(16).repeat().with_options(options)
    pixelcnn.fit(grids, epochs=1, steps_per_epoch=3, verbose=0, shuffle=False)

    # A streamed folder: each worker reads its own share of the training files, two epochs.
    train, _ = stream_images(folder, verbose=0).split(0.2, seed=0)
    batches, steps = train.epoch_batches(4, seed=3, first_epoch=0, epochs=2, strategy=strategy)
    iterator = iter(batches)
    epochs = []
    for epoch in range(2):
        seen = []
        for _ in range(steps):
            for local in strategy.experimental_local_results(next(iterator)):
                seen.extend(np.rint(local.numpy()[:, 0, 0, 0] * 255).astype(int).tolist())
        epochs.append(seen)
    train_ids = [int(path.rsplit("/", 1)[-1][:2]) for path in train._files[train.positions]]
    np.savez(out, codebook=model.quantizer.codebook.numpy(),
             prior=np.concatenate([w.numpy().ravel() for w in pixelcnn.weights]),
             epoch0=epochs[0], epoch1=epochs[1], train=train_ids, steps=steps)
    """
)


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory):
    """What each of two `MultiWorkerMirroredStrategy` workers on localhost ended with (WORKER_SCRIPT,
    one process per worker for both tests below): `[worker 0's arrays, worker 1's arrays]`."""
    import numpy as np
    from PIL import Image

    folder = tmp_path_factory.mktemp("images")
    for index in range(25):  # image i is filled with the value i
        Image.fromarray(np.full((4, 4), index, np.uint8)).save(folder / f"{index:02d}.png")
    outputs = tmp_path_factory.mktemp("workers")
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    workers = []
    for index in range(2):
        config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        environment = {**os.environ, "TF_CONFIG": config, "TF_CPP_MIN_LOG_LEVEL": "3"}
        workers.append(
            subprocess.Popen(
                [sys.executable, "-c", WORKER_SCRIPT, str(outputs / f"worker{index}.npz"), str(folder)],
                env=environment,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    try:
        results = [worker.communicate(timeout=300) for worker in workers]
    finally:
        for worker in workers:  # the workers always exit, even when one hangs
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    for worker, (_, stderr) in zip(workers, results):
        assert worker.returncode == 0, stderr[-3000:]
    return [dict(np.load(outputs / f"worker{index}.npz")) for index in range(2)]


@pytest.mark.slow
def test_two_workers_on_localhost_end_with_identical_codebooks_and_priors(two_workers):
    import numpy as np

    first, second = two_workers
    np.testing.assert_array_equal(first["codebook"], second["codebook"])
    np.testing.assert_array_equal(first["prior"], second["prior"])


@pytest.mark.slow
def test_two_workers_each_read_their_own_share_of_a_streamed_folder(two_workers):
    first, second = two_workers
    train = set(first["train"].tolist())
    assert train == set(second["train"].tolist()) and 15 <= len(train) < 25
    assert int(first["steps"]) == int(second["steps"])  # the same number of steps on both
    for epoch in ("epoch0", "epoch1"):
        shares = set(first[epoch].tolist()), set(second[epoch].tolist())
        assert not shares[0] & shares[1]  # disjoint: no file is read by both workers
        assert shares[0] | shares[1] == train  # together they cover the training split
    assert first["epoch0"].tolist() != first["epoch1"].tolist()  # reshuffled each epoch
