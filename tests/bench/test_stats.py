"""Percentiles are numpy's, with the anchor's rule for missed (infinitely late) markers."""

from __future__ import annotations

import math

import numpy
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.stats import percentile

SAMPLES = st.lists(st.floats(0, 1e4, allow_nan=False), min_size=1, max_size=200)


@settings(deadline=None)
@given(SAMPLES, st.floats(0, 100))
def test_finite_samples_give_numpys_linear_percentile(values: list[float], q: float) -> None:
    assert percentile(values, q) == float(numpy.percentile(values, q))


@settings(deadline=None)
@given(SAMPLES, st.integers(1, 50), st.floats(0, 100))
def test_a_percentile_reaching_a_missed_marker_is_infinite_and_one_below_is_not(
    values: list[float], missed: int, q: float
) -> None:
    samples = values + [math.inf] * missed
    result = percentile(samples, q)
    assert result is not None
    reaches = math.ceil((len(samples) - 1) * q / 100) >= len(values)
    assert math.isinf(result) == reaches
    if not reaches:
        ordered = sorted(values) + [max(values)] * missed  # same order statistics up to q
        assert result == float(numpy.percentile(ordered, q))


def test_no_samples_no_percentile() -> None:
    assert percentile([], 50) is None
