"""Bucket choice, padding and tiling: every pixel is produced exactly once, by a tile that saw its context."""

import numpy as np
import pytest

from edgesdk.runtime.geometry import pad_to, plan_tiles, round_up


@pytest.mark.parametrize("h,w,tile,margin", [(700, 900, (352, 512), 64), (1000, 1000, (256, 256), 32),
                                              (300, 2000, (352, 512), 64), (129, 129, (128, 128), 16)])
def test_tiles_partition_the_image_and_keep_a_margin(h, w, tile, margin):
    count = np.zeros((h, w), np.int32)
    for t in plan_tiles(h, w, tile, margin):
        ys0, ys1, xs0, xs1 = t.src
        yk0, yk1, xk0, xk1 = t.keep
        assert ys1 - ys0 <= tile[0] and xs1 - xs0 <= tile[1]
        assert ys0 <= yk0 < yk1 <= ys1 and xs0 <= xk0 < xk1 <= xs1
        # A kept pixel is `margin` inside its window unless the window touches the image border.
        assert yk0 == 0 or yk0 - ys0 >= margin
        assert yk1 == h or ys1 - yk1 >= margin
        assert xk0 == 0 or xk0 - xs0 >= margin
        assert xk1 == w or xs1 - xk1 >= margin
        count[yk0:yk1, xk0:xk1] += 1
    assert (count == 1).all()


def test_pad_to_reflects_and_handles_pads_larger_than_the_image():
    x = np.arange(6, dtype=np.float32).reshape(2, 3, 1)
    y = pad_to(x, (5, 7))
    assert y.shape == (5, 7, 1)
    np.testing.assert_array_equal(y[:2, :3], x)
    # Symmetric reflection: the row after the last repeats it, then walks back.
    np.testing.assert_array_equal(y[2, :3, 0], x[1, :, 0])
    np.testing.assert_array_equal(y[3, :3, 0], x[0, :, 0])
    np.testing.assert_array_equal(y[:2, 3, 0], x[:, 2, 0])
    with pytest.raises(ValueError):
        pad_to(x, (1, 3))


def test_plan_inference_prices_padding_against_tiling():
    from edgesdk.runtime.geometry import plan_inference

    buckets = [(352, 512), (512, 352), (480, 640), (640, 480), (1024, 1024)]
    i, tiles = plan_inference(321, 481, buckets)  # fits the first: one padded run
    assert i == 0 and len(tiles) == 1
    # 512x512 fits only 1024x1024 (1,048,576 pixels); two 352x512 tiles process 360,448.
    i, tiles = plan_inference(512, 512, buckets)
    assert buckets[i] in ((352, 512), (512, 352)) and len(tiles) == 2
    assert round_up(321, 32) == 352 and round_up(352, 32) == 352
    i, tiles = plan_inference(1000, 1000, buckets)  # nine 352x512 tiles would cost 1.6 M pixels
    assert buckets[i] == (1024, 1024) and len(tiles) == 1
    i, tiles = plan_inference(3000, 100, buckets)
    assert len(tiles) * buckets[i][0] * buckets[i][1] <= 5 * 640 * 480
