import numpy as np
import pytest

from edgesdk import postprocess as pp


def test_weak_pixels_connected_to_strong_ones_survive():
    e = np.zeros((7, 9), np.float32)
    e[3, 1:8] = 0.3  # weak chain
    e[3, 4] = 0.9  # one strong pixel in it
    e[0, 0] = 0.3  # isolated weak pixel
    out = pp.hysteresis(e, low=0.2, high=0.8)
    assert out[3, 1:8].all()
    assert not out[0, 0]
    assert out.sum() == 7


def test_eight_connectivity_and_inclusive_thresholds():
    e = np.zeros((5, 5), np.float32)
    e[0, 0] = 0.5  # == high: strong
    e[1, 1] = 0.2  # == low, diagonal neighbour: kept
    e[2, 3] = 0.2  # not adjacent to the chain
    out = pp.hysteresis(e, low=0.2, high=0.5)
    assert out[0, 0] and out[1, 1] and not out[2, 3]


def test_equal_thresholds_is_a_plain_threshold():
    e = np.random.default_rng(0).random((30, 40)).astype(np.float32)
    np.testing.assert_array_equal(pp.hysteresis(e, 0.6, 0.6), e >= 0.6)


def test_low_above_high_is_rejected():
    with pytest.raises(ValueError, match="low must be <= high"):
        pp.hysteresis(np.zeros((3, 3), np.float32), 0.6, 0.5)
