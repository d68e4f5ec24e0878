"""Mask schedules: gamma against NumPy, the per-step masked counts against a plain-Python rebuild."""

import math

import numpy as np
import pytest

from prior.mask_schedule import SCHEDULES, mask_ratio, masked_counts

REFERENCE_GAMMA = {
    "cosine": lambda r: math.cos(math.pi * r / 2),
    "linear": lambda r: 1 - r,
    "square": lambda r: 1 - r * r,
}


@pytest.mark.parametrize("schedule", sorted(SCHEDULES))
def test_mask_ratio_matches_numpy_and_runs_from_one_to_zero(schedule):
    ratios = np.linspace(0, 1, 11)
    expected = [REFERENCE_GAMMA[schedule](r) for r in ratios]
    np.testing.assert_allclose(np.asarray(mask_ratio(ratios, schedule)), expected, atol=1e-12)
    assert float(mask_ratio(0.0, schedule)) == 1.0 and abs(float(mask_ratio(1.0, schedule))) < 1e-7  # float32


def reference_counts(steps, total, gamma):
    """The schedule rebuilt in plain Python: floor(total * gamma((t + 1) / steps)), then clipped so
    each step commits >= 1 code and every later step keeps one to commit."""
    counts, before = [], total
    for step in range(steps):
        wanted = math.floor(total * gamma((step + 1) / steps))
        before = min(max(wanted, steps - step - 1), before - 1)
        counts.append(before)
    return counts


@pytest.mark.parametrize("schedule", sorted(SCHEDULES))
@pytest.mark.parametrize("steps, total", [(1, 1), (8, 49), (16, 49), (8, 1024), (16, 1024), (5, 6)])
def test_masked_counts_follow_the_schedule_and_commit_at_least_one_code_per_step(schedule, steps, total):
    counts = masked_counts(steps, total, schedule)
    assert counts.dtype == np.int32 and counts.tolist() == reference_counts(
        steps, total, REFERENCE_GAMMA[schedule]
    )
    committed = -np.diff(np.concatenate([[total], counts]))
    assert counts[-1] == 0 and committed.min() >= 1 and committed.sum() == total


def test_the_paper_cosine_counts_for_a_16x16_grid_in_8_steps():
    # floor(256 * cos(pi t / 16)) for t = 1..8, computed by hand from the cosine table
    assert masked_counts(8, 256).tolist() == [251, 236, 212, 181, 142, 97, 49, 0]


@pytest.mark.parametrize("schedule", sorted(SCHEDULES))
@pytest.mark.parametrize("total", [1, 2, 7, 49])
def test_as_many_steps_as_positions_commits_exactly_one_code_per_step(schedule, total):
    assert masked_counts(total, total, schedule).tolist() == list(range(total - 1, -1, -1))


def test_nothing_to_decode_gives_zeros_and_bad_arguments_are_refused():
    assert masked_counts(4, 0).tolist() == [0, 0, 0, 0]
    with pytest.raises(ValueError, match="steps=5 is more than the 4 positions"):
        masked_counts(5, 4)
    with pytest.raises(ValueError, match="steps must be an int >= 1"):
        masked_counts(0, 4)
    with pytest.raises(ValueError, match="schedule must be one of"):
        masked_counts(2, 4, "exponential")
