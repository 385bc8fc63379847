"""Bad arrays get a clear ValueError/TypeError; nothing crashes the interpreter."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from edgesdk import _native
from edgesdk import postprocess as pp

F32 = np.zeros((4, 5), np.float32)
B = np.zeros((4, 5), bool)


@pytest.mark.parametrize(
    "call, exc, message",
    [
        (lambda: _native.nms(np.zeros((3, 4, 5), np.float32), 2, 5, 1.01, 1), ValueError, r"nms: edge must be a 2-D array, got shape \(3, 4, 5\)"),
        (lambda: _native.nms(np.zeros((4, 5), np.float64), 2, 5, 1.01, 1), TypeError, "must be float32"),
        (lambda: _native.nms(np.zeros((4, 5), ">f4"), 2, 5, 1.01, 1), TypeError, "native byte order"),
        (lambda: _native.nms(np.zeros((6, 10), np.float32)[:, ::2], 2, 5, 1.01, 1), ValueError, "C-contiguous"),
        (lambda: _native.nms(np.zeros((0, 5), np.float32), 2, 5, 1.01, 1), ValueError, r"empty, shape \(0, 5\)"),
        (lambda: _native.nms(np.frombuffer(bytes(81), np.float32, 20, 1).reshape(4, 5), 2, 5, 1.01, 1), ValueError, "aligned"),
        (lambda: _native.nms(F32, -1, 5, 1.01, 1), ValueError, "r must be"),
        (lambda: _native.nms(F32, 2, -5, 1.01, 1), ValueError, "s must be"),
        (lambda: _native.nms(F32, 2, 5, float("nan"), 1), ValueError, "m must be finite"),
        (lambda: _native.nms(F32, 2, 5, 1.01, -3), ValueError, "threads"),
        (lambda: _native.thin(np.zeros((4, 5), np.int32), -1), TypeError, "bool or uint8"),
        (lambda: _native.correspond_pixels(B, np.zeros((5, 4), bool), 0.0075, 100), ValueError, r"bmap1 has shape \(4, 5\) but bmap2 has shape \(5, 4\)"),
        (lambda: _native.correspond_pixels(B, B, -0.1, 100), ValueError, "max_dist must be in"),
        (lambda: _native.correspond_pixels(B, B, 0.5, 0.1), ValueError, "outlier_cost must exceed"),
        (lambda: _native.correspond_pixels(B, B, float("inf"), 100), ValueError, "finite"),
        (lambda: _native.conv_tri(F32, 2.5, 1), ValueError, "integer above 1"),
        (lambda: _native.conv_tri(F32, 0.0, 1), ValueError, "r must be > 0"),
        (lambda: pp.nms(np.zeros((4, 5), np.uint8)), TypeError, "divide by 255|scale integer"),
        (lambda: pp.thin(B, max_iter=-2), ValueError, "max_iter"),
        # The wrong kind of argument, which int()/float() used to turn into something else.
        (lambda: pp.thin(B, max_iter=2.5), ValueError, r"max_iter \(None: until nothing changes\) must be an integer >= 0, got 2.5"),
        (lambda: pp.NmsParams(r=2.5), ValueError, "nms needs integers r, s >= 0 and a positive m, got r=2.5"),
        (lambda: pp.NmsParams(s="5"), ValueError, "got r=2, s='5'"),
        (lambda: pp.NmsParams(m=True), ValueError, "m=True"),
        (lambda: pp.nms(F32, {"r": 2}), TypeError, "nms: params must be an NmsParams, got dict"),
        (lambda: pp.nms(F32, threads=1.5), ValueError, r"threads must be an integer in \[0, 1024\], got 1.5"),
        (lambda: pp.hysteresis(F32, "0.2", 0.5), ValueError, "hysteresis: low must be a number, got '0.2'"),
        (lambda: pp.hysteresis(F32, 0.2, True), ValueError, "hysteresis: high must be a number, got True"),
        (lambda: pp.conv_tri(F32, "1"), ValueError, "conv_tri: r must be a number, got '1'"),
        (lambda: pp.correspond_pixels(B, B, "0.01"), ValueError, "max_dist must be a number, got '0.01'"),
    ],
)
def test_bad_arguments(call, exc, message):
    with pytest.raises(exc, match=message):
        call()


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_values_are_located(value):
    e = np.zeros((6, 7), np.float32)
    e[4, 2] = value
    with pytest.raises(ValueError, match=r"NaN or infinite values \(first at row 4, column 2\)"):
        pp.nms(e)
    with pytest.raises(ValueError, match="NaN or infinite"):
        pp.hysteresis(e, 0.1, 0.2)
    with pytest.raises(ValueError, match="NaN or infinite"):
        pp.thin(e.astype(np.float64))


float_maps = hnp.arrays(
    np.float32,
    hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=24),
    elements=st.floats(-2, 2, width=32) | st.just(np.nan) | st.just(np.inf),
)
bool_maps = hnp.arrays(np.bool_, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=24))


@settings(max_examples=150, deadline=None)
@given(float_maps, st.integers(0, 6), st.integers(0, 8), st.floats(0.5, 2))
def test_nms_never_crashes(edge, r, s, m):
    try:
        out = pp.nms(edge, pp.NmsParams(r=r, s=s, m=m))
    except ValueError:
        assert not np.isfinite(edge).all()
        return
    assert out.shape == edge.shape and np.isfinite(out).all()


@settings(max_examples=150, deadline=None)
@given(bool_maps, st.integers(-1, 3))
def test_thin_never_crashes(img, max_iter):
    out = pp.thin(img, max_iter=None if max_iter < 0 else max_iter)
    assert out.shape == img.shape and not (out & ~img).any()  # only removes pixels


@settings(max_examples=150, deadline=None)
@given(bool_maps, st.data(), st.floats(0, 1))
def test_correspond_never_crashes(a, data, max_dist):
    b = data.draw(hnp.arrays(np.bool_, a.shape))
    m1, m2, cost = pp.correspond_pixels(a, b, max_dist=max_dist)
    assert (m1 > 0).sum() == (m2 > 0).sum() <= min(a.sum(), b.sum())
    assert np.isfinite(cost)


@settings(max_examples=100, deadline=None)
@given(float_maps, st.floats(-1, 1), st.floats(0, 1))
def test_hysteresis_never_crashes(edge, low, extra):
    try:
        out = pp.hysteresis(edge, low, low + extra)
    except ValueError:
        # NaN/inf in the map, or a nonzero threshold that float32 (where maps are compared) makes 0
        underflow = any(v != 0 and np.float32(v) == 0 for v in (low, low + extra))
        assert underflow or not np.isfinite(edge).all()
        return
    assert not (out & ~(edge >= low)).any()
