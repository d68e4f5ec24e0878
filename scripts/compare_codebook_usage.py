"""Codes used at a large K: the plain EMA codebook against factorized, l2-normalised codes.

    python scripts/compare_codebook_usage.py                        # Fashion-MNIST, K=16,384, 10 epochs
    python scripts/compare_codebook_usage.py --k 4096 --epochs 5
    python scripts/compare_codebook_usage.py --quick                # smoke run: digits, tiny models, K=64

Both codebooks are trained by `vqgen train` in their own run folders under `--root` (the same data, seed
and model; only the codebook's options differ): the plain one is vqgen's default quantizer (EMA updates,
data initialisation, restarts of dead codes), the factorized one looks its codes up by cosine in an
8-dimensional projection of the encoder output (`--codebook-dim 8 --l2-normalize`; Yu et al. 2022,
LlamaGen). `vqgen evaluate` then counts the codes each uses on the whole training split (the images it
trained on, its validation split included: the usage goal is about training) and its perplexity, and
scores its reconstructions of held-out images (Fashion-MNIST's t10k split when `--data` is a folder of
idx files, else the run's validation split), so a codebook that stays alive at a cost in fidelity shows.
Training images/s are epochs x images / wall seconds of `vqgen train`, start-up included.
"""

import argparse
import os
import tempfile
import time

from vqgen_commands import (
    FACTORIZED,
    FASHION_MNIST,
    TINY_MODEL,
    evaluate,
    held_out_source,
    is_idx_folder,
    split_file,
    train_arm,
)

CODEBOOKS = {
    "plain EMA": [],
    "factorized, l2-normalised": FACTORIZED,
}


def measure_codebook(run, data, k, epochs, options, model_options, held_out):
    """Trains one codebook at K=`k` and evaluates it.

    Args:
        run: str. The run folder.
        data: str. The training images (`--data`).
        k: int. The codebook size.
        epochs: int. Stage-1 epochs.
        options: list of str. The codebook's options.
        model_options: list of str. Options both codebooks share.
        held_out: str or None. The held-out images for the PSNR; None: the run's validation split.

    Returns:
        tuple: (codes used on the training split, their perplexity, held-out PSNR in dB, training
        images/s or None).
    """
    speed = train_arm(run, data, epochs, ["--num-embeddings", str(k), *options], model_options)
    # an idx folder's training file whole (vqgen's validation split included); any other source as given
    if is_idx_folder(data):
        data = split_file(data, "train", os.path.join(os.path.dirname(run), "train.npz"), labels=False)
    usage = evaluate(run, data, samples=0)["codebook"][0]
    psnr = evaluate(run, held_out, samples=0)["reconstruction"]["psnr_db"]
    return usage["codes_used"], usage["perplexity"], psnr, speed


def main():
    """Trains both codebooks, evaluates them and prints the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", default=FASHION_MNIST, help="training images (default: Fashion-MNIST idx files)"
    )
    parser.add_argument("--k", type=int, default=16384, help="codebook size")
    parser.add_argument("--epochs", type=int, default=10, help="stage-1 epochs per codebook")
    parser.add_argument("--root", default=None, help="folder for the runs (default: a temporary one)")
    parser.add_argument(
        "--quick", action="store_true", help="digits, tiny models, K=64, one epoch: a smoke run"
    )
    args = parser.parse_args()
    if args.quick:
        args.data, args.k, args.epochs = "digits", 64, 1
    model_options = TINY_MODEL if args.quick else []
    root = args.root or tempfile.mkdtemp(prefix="vqgen-codebook-usage-")
    os.makedirs(root, exist_ok=True)
    held_out = held_out_source(args.data, root, labels=False)
    load_before = os.getloadavg()
    start = time.perf_counter()
    rows = []
    for index, (name, options) in enumerate(CODEBOOKS.items()):
        run = os.path.join(root, f"codebook{index}")
        rows.append((name, options, *measure_codebook(run, args.data, args.k, args.epochs, options,
                                                      model_options, held_out)))  # fmt: skip
        print(f"{name}: {rows[-1][2]} / {args.k} codes used", flush=True)
    minutes = (time.perf_counter() - start) / 60
    load_after = os.getloadavg()

    print(
        f"\n{args.data}, K={args.k}, {args.epochs} stage-1 epochs each; codes counted on the training split; "
        f"PSNR on {'t10k' if held_out else 'the validation split'}; {minutes:.1f} min; load average "
        f"{load_before[0]:.1f} before, {load_after[0]:.1f} after on {os.cpu_count()} cores\n"
    )
    print("| codebook | options | codes used | perplexity | held-out PSNR (dB) | train images/s |")
    print("|---|---|---|---|---|---|")
    for name, options, used, perplexity, psnr, speed in rows:
        share = f"{used} / {args.k} ({100 * used / args.k:.1f}%)"
        print(
            f"| {name} | `{' '.join(options) or 'defaults'}` | {share} | {perplexity:.0f} | {psnr:.2f} "
            f"| {'n/a' if speed is None else f'{speed:.0f}'} |"
        )


if __name__ == "__main__":
    from results_file import run_and_record

    run_and_record(main, "compare_codebook_usage", variant_option="--data")
