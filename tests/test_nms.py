"""Edge NMS: hand-computed cases, the numpy transcription of the MATLAB code, and quirks kept on purpose."""

import numpy as np
import pytest

import reference as ref
from edgesdk import postprocess as pp


def soft_ridge(shape, axis, centre, sigma=1.5):
    """A soft edge: a Gaussian profile across `axis`, constant along the other."""
    coords = np.arange(shape[axis], dtype=np.float32)
    profile = np.exp(-0.5 * ((coords - centre) / sigma) ** 2).astype(np.float32)
    return np.broadcast_to(profile[:, None] if axis == 0 else profile[None, :], shape).copy()


class TestConvTri:
    def test_r1_corner_impulse_by_hand(self):
        # [1 2 1]/4 in each direction with the border pixel repeated: at the
        # corner, (1 + 2) / 4 per axis -> 9/16; its neighbours get 3/16.
        img = np.zeros((5, 5), np.float32)
        img[0, 0] = 1
        out = pp.conv_tri(img, 1)
        assert out[0, 0] == pytest.approx(9 / 16)
        assert out[0, 1] == pytest.approx(3 / 16)
        assert out[1, 1] == pytest.approx(1 / 16)
        assert out[2:, :].sum() == 0

    def test_r4_interior_impulse_is_the_triangle(self):
        img = np.zeros((21, 21), np.float32)
        img[10, 10] = 1
        out = pp.conv_tri(img, 4)
        tri = np.array([1, 2, 3, 4, 5, 4, 3, 2, 1]) / 25
        np.testing.assert_allclose(out[6:15, 6:15], np.outer(tri, tri), atol=1e-7)

    def test_fractional_radius_filter(self):
        # r = 0.5: p = 12/0.5/2.5 - 2 = 7.6, filter [1 7.6 1] / 9.6.
        img = np.zeros((1, 7), np.float32)
        img[0, 3] = 1
        out = pp.conv_tri(img, 0.5)
        # The row's vertical pass sees the same row mirrored: only the
        # horizontal filter remains times the column sum 9.6/9.6.
        np.testing.assert_allclose(out[0, 2:5], np.array([1, 7.6, 1]) / 9.6, rtol=1e-6)

    @pytest.mark.parametrize("shape", [(1, 1), (2, 3), (5, 1), (3, 9), (40, 33)])
    @pytest.mark.parametrize("r", [1, 4, 0.5, 7])
    def test_equals_matlab_transcription(self, shape, r):
        # Includes images smaller than the filter (mirroring wraps around).
        img = np.random.default_rng(0).random(shape, dtype=np.float32)
        np.testing.assert_array_equal(pp.conv_tri(img, r), ref.conv_tri(img, r))

    def test_constant_image_is_unchanged(self):
        img = np.full((13, 17), 0.3, np.float32)
        np.testing.assert_allclose(pp.conv_tri(img, 4), img, rtol=1e-6)


class TestOrientation:
    def test_vertical_ridge_has_horizontal_normal(self):
        o = pp.edge_orientation(soft_ridge((31, 31), axis=1, centre=15))
        # O in [0, pi): a horizontal normal is 0 (or pi, the same line).
        d = np.minimum(o[10:20, 12:19], np.pi - o[10:20, 12:19])
        assert d.max() < 1e-3

    def test_diagonal_ridge_has_diagonal_normal(self):
        yy, xx = np.mgrid[0:41, 0:41].astype(np.float32)
        ridge = np.exp(-0.5 * ((xx - yy) / 2.0) ** 2).astype(np.float32)
        o = pp.edge_orientation(ridge)
        # The line y = x has normal (1, -1)/sqrt(2): angle 3 pi / 4, on the
        # ridge and next to it (further out the curvature changes sign).
        near = (np.abs(xx - yy) <= 1) & (xx > 8) & (xx < 32)
        np.testing.assert_allclose(o[near], 3 * np.pi / 4, atol=1e-3)

    def test_equals_matlab_transcription(self):
        img = pp.conv_tri(np.random.default_rng(1).random((50, 60), dtype=np.float32), 2)
        np.testing.assert_allclose(pp.edge_orientation(img), ref.edge_orientation(img), atol=2e-6)


class TestNms:
    def test_vertical_ridge_thins_to_its_centre_column(self):
        out = pp.nms(soft_ridge((40, 41), axis=1, centre=20))
        inner = out[5:-5]  # rows outside the faded border band
        assert (inner[:, 20] > 0).all()
        assert (np.delete(inner, 20, axis=1) == 0).all()

    def test_diagonal_ridge_thins_to_one_pixel_per_row(self):
        yy, xx = np.mgrid[0:48, 0:48].astype(np.float32)
        ridge = np.exp(-0.5 * ((xx - yy) / 2.0) ** 2).astype(np.float32)
        out = pp.nms(ridge)
        for y in range(8, 40):
            assert np.flatnonzero(out[y]).tolist() == [y]

    def test_horizontal_ridge_is_not_suppressed_as_in_the_original(self):
        # A quirk of O = atan(Oyy * sign(-Oxy) / (Oxx + 1e-5)) kept on purpose:
        # along an exactly horizontal ridge Oxy == 0, so O = 0 and the search
        # runs along the ridge, where every value is equal. Nothing is
        # suppressed; the benchmark's thinning step then thins such edges.
        ridge = soft_ridge((21, 21), axis=0, centre=10)
        out = pp.nms(ridge)
        np.testing.assert_array_equal(out, ref.nms(ridge))
        assert (out[6:15, 6:15] > 0).all()

    def test_empty_map_stays_empty(self):
        assert not pp.nms(np.zeros((30, 20), np.float32)).any()

    def test_full_map_is_only_faded_at_the_border(self):
        # A constant map has no stronger neighbour anywhere: every pixel
        # survives, times x/s and y/s inside the band of width s=5.
        out = pp.nms(np.ones((20, 30), np.float32))
        ramp_x = np.minimum(np.minimum(np.arange(30), np.arange(30)[::-1]) / 5, 1)
        ramp_y = np.minimum(np.minimum(np.arange(20), np.arange(20)[::-1]) / 5, 1)
        np.testing.assert_allclose(out, np.outer(ramp_y, ramp_x), atol=1e-6)

    def test_border_band_limited_to_half_the_image(self):
        # s = min(s, w // 2, h // 2) = 1 for a 12x3 image: the factor x/s = 0
        # zeroes the outer columns and rows, the rest is untouched.
        out = pp.nms(np.ones((12, 3), np.float32))
        assert (out[:, [0, 2]] == 0).all() and (out[[0, -1], :] == 0).all()
        np.testing.assert_allclose(out[1:-1, 1], 1.0)
        # 1x1: s = 0, no fade, and the lone pixel has no stronger neighbour.
        out = pp.nms(np.ones((1, 1), np.float32))
        assert out.shape == (1, 1) and out[0, 0] == 1.0

    @pytest.mark.parametrize("seed", range(4))
    def test_matches_matlab_transcription_on_soft_maps(self, seed):
        rng = np.random.default_rng(seed)
        edge = pp.conv_tri(rng.random((96, 128), dtype=np.float32) ** 4, 3)
        edge /= edge.max()
        ours, theirs = pp.nms(edge), ref.nms(edge)
        # The normal comes from tan O instead of cos/sin(atan): a pixel may
        # flip only where a comparison ties within float rounding.
        assert np.mean((ours > 0) != (theirs > 0)) < 1e-3
        same = (ours > 0) == (theirs > 0)
        np.testing.assert_array_equal(ours[same], theirs[same])

    def test_suppress_nonmax_is_the_original_with_cos_sin(self):
        edge = pp.conv_tri(np.random.default_rng(7).random((64, 64), dtype=np.float32), 2)
        orient = pp.edge_orientation(edge)
        from edgesdk import _native

        out = _native.suppress_nonmax(edge, orient, 2, 5, 1.01, 1)
        np.testing.assert_array_equal(out, ref.suppress_nonmax(edge, orient, 2, 5, 1.01))

    def test_results_do_not_depend_on_threads(self):
        edge = pp.conv_tri(np.random.default_rng(3).random((700, 300), dtype=np.float32), 2)
        one = pp.nms(edge, threads=1)
        for t in (2, 3, 7):
            np.testing.assert_array_equal(pp.nms(edge, threads=t), one)

    def test_parameters_change_the_result_as_documented(self):
        edge = soft_ridge((30, 31), axis=1, centre=15)
        wide = pp.nms(edge, pp.NmsParams(r=2, s=0, m=1.01))
        assert wide[0, 15] > 0  # s=0: no border fade
        # A multiplier above every neighbour ratio keeps everything.
        keep = pp.nms(edge, pp.NmsParams(r=2, s=0, m=1e30))
        np.testing.assert_array_equal(keep, pp.conv_tri(edge, 1))
