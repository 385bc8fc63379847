"""Whatever image a user hands over becomes (H, W, 3) uint8, or a clear error naming it."""

import io

import cv2
import numpy as np
import pytest

from edgesdk.errors import InputError
from exif_jpeg import with_exif_orientation
from edgesdk.formats import header_of_bytes
from edgesdk.runtime.image import read_image


def stored_size(data):
    """(width, height) an encoded image's header declares, or None where it cannot be read."""
    try:
        header = header_of_bytes(data, "data")
    except InputError:
        return None
    return header.width, header.height


def test_gray_rgba_sixteen_bit_and_float_arrays():
    g = np.array([[0, 128], [255, 7]], np.uint8)
    px, order, _ = read_image(g)
    assert px.shape == (2, 2, 3) and (px[..., 0] == g).all() and (px[..., 2] == g).all()
    rgba = np.zeros((3, 4, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 255  # opaque: the colour as it is
    px, _, _ = read_image(rgba)
    assert px.shape == (3, 4, 3) and (px[..., 0] == 200).all() and (px[..., 1] == 0).all()
    sixteen = np.array([[0, 65535, 257, 32896]], np.uint16)  # 257 = 1/255 of the range; 32896 = 128 * 257
    px, _, _ = read_image(sixteen)
    assert px[0, :, 0].tolist() == [0, 255, 1, 128]
    px, _, _ = read_image(np.array([[0.0, 1.0, 0.5]], np.float32))
    assert px[0, :, 0].tolist() == [0, 255, 128]


def test_files_are_read_as_bgr_whatever_their_depth(tmp_path):
    img = np.zeros((4, 5, 3), np.uint16)
    img[..., 2] = 65535  # red in OpenCV's BGR
    cv2.imwrite(str(tmp_path / "red16.png"), img)
    px, order, where = read_image(tmp_path / "red16.png")
    assert order == "BGR" and where.endswith("red16.png")
    assert (px[..., 2] == 255).all() and (px[..., 0] == 0).all()


@pytest.mark.parametrize(
    "arg,message",
    [
        (np.zeros((0, 5), np.uint8), "empty"),
        (np.zeros((4, 4, 5), np.uint8), "shape"),
        (np.full((2, 2), np.nan, np.float32), "NaN"),
        (np.full((2, 2), 3.0, np.float32), r"\[0, 1\]"),
        (np.zeros((2, 2), np.int64), "dtype"),
        (["not", "an", "image"], "a path, a numpy array, encoded bytes, a binary stream or a PIL image"),
    ],
)
def test_bad_arrays_get_clear_errors(arg, message):
    with pytest.raises(InputError, match=message):
        read_image(arg)


def test_missing_and_corrupt_files_are_named(tmp_path):
    with pytest.raises(InputError, match="nothere.jpg: no such file"):
        read_image(tmp_path / "nothere.jpg")
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 definitely not a jpeg")
    with pytest.raises(InputError, match="broken.jpg: not a readable image"):
        read_image(bad)


# CIPA DC-008 (Exif 2.3), Orientation: which side of the displayed image the stored
# 0th row and 0th column are, written out as the array operation that displays it.
DISPLAYED = {
    1: lambda a: a,                     # 0th row top, 0th column left
    2: lambda a: a[:, ::-1],            # top, right: mirrored left-right
    3: lambda a: a[::-1, ::-1],         # bottom, right: turned 180 degrees
    4: lambda a: a[::-1, :],            # bottom, left: mirrored top-bottom
    5: lambda a: a.transpose(1, 0, 2),  # left, top: transposed
    6: lambda a: np.rot90(a, -1),       # right, top: turned 90 degrees clockwise
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),  # right, bottom: transverse
    8: lambda a: np.rot90(a, 1),        # left, bottom: turned 90 degrees counter-clockwise
}


@pytest.mark.parametrize("orientation", sorted(DISPLAYED))
def test_files_are_turned_as_their_exif_orientation_says(tmp_path, orientation):
    # A phone stores a portrait photo as landscape sensor rows plus this tag; every viewer,
    # and the training stack's reader, shows it turned: the edges must line up with that.
    stored = np.zeros((24, 40, 3), np.uint8)
    stored[:8, :16] = 255  # a white block at the stored top-left corner
    stored[16:, 30:] = 128  # a gray one at the bottom-right (gray: no chroma subsampling blur)
    ok, jpeg = cv2.imencode(".jpg", stored, [cv2.IMWRITE_JPEG_QUALITY, 100])
    path = tmp_path / f"o{orientation}.jpg"
    path.write_bytes(with_exif_orientation(jpeg.tobytes(), orientation))
    decoded = cv2.imread(str(path), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    assert decoded.shape == stored.shape and np.abs(decoded.astype(int) - stored).max() < 24
    px, order, _ = read_image(path)
    assert order == "BGR"
    np.testing.assert_array_equal(px, DISPLAYED[orientation](decoded))


def test_encoded_bytes_and_binary_streams_are_read_as_their_file(tmp_path):
    # A web server holds an upload as bytes or a stream: it must come out as the same
    # file on disk would, EXIF orientation included (6: the stored rows are turned).
    stored = np.zeros((24, 40, 3), np.uint8)
    stored[:8, :16] = 255
    ok, jpeg = cv2.imencode(".jpg", stored, [cv2.IMWRITE_JPEG_QUALITY, 100])
    data = with_exif_orientation(jpeg.tobytes(), 6)
    path = tmp_path / "upload.jpg"
    path.write_bytes(data)
    from_file, order, _ = read_image(path)
    assert from_file.shape == (40, 24, 3)
    with open(path, "rb") as stream:
        px, order, where = read_image(stream)
    assert order == "BGR" and where == str(path)
    np.testing.assert_array_equal(px, from_file)
    column = np.frombuffer(data, np.uint8).reshape(-1, 1)  # a memoryview with a shape
    strided = np.zeros(2 * len(data), np.uint8)
    strided[::2] = np.frombuffer(data, np.uint8)  # a memoryview that is not contiguous
    for arg in (data, bytearray(data), memoryview(data), io.BytesIO(data), memoryview(column), memoryview(strided[::2])):
        px, order, where = read_image(arg)
        assert order == "BGR", type(arg)
        np.testing.assert_array_equal(px, from_file)
    assert read_image(data)[2] == f"bytes of {len(data)} bytes"


def pillow_png(tmp_path, mode):
    """A small PNG in one of Pillow's modes, written by Pillow, and the same file opened by it."""
    Image = pytest.importorskip("PIL.Image", reason="the PIL tests need Pillow (pip install -e '.[dev]')")
    rng = np.random.default_rng(7)
    rgb = Image.fromarray(rng.integers(0, 256, (13, 17, 3), dtype=np.uint8))
    made = {
        "RGB": lambda: rgb,
        "RGBA": lambda: Image.fromarray(rng.integers(0, 256, (13, 17, 4), dtype=np.uint8), "RGBA"),
        "L": lambda: rgb.convert("L"),
        "LA": lambda: Image.fromarray(rng.integers(0, 256, (13, 17, 2), dtype=np.uint8), "LA"),
        "P": lambda: rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16),
        "1": lambda: Image.fromarray(rng.random((13, 17)) > 0.5),
        "I;16": lambda: Image.fromarray(rng.integers(0, 65536, (13, 17), dtype=np.uint16)),
    }[mode]()
    path = tmp_path / f"{mode.replace(';', '')}.png"
    made.save(path)
    return path, Image.open(path)


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA", "P", "1", "I;16"])
def test_a_pil_image_gives_the_pixels_of_its_file(tmp_path, mode):
    # The reference is the same PNG decoded by OpenCV (another decoder; PNG is lossless), in RGB order.
    path, image = pillow_png(tmp_path, mode)
    assert image.mode == mode  # Pillow opened it in the mode under test
    px, order, where = read_image(image)
    from_file, file_order, _ = read_image(path)
    assert (order, file_order, where) == ("RGB", "BGR", str(path))
    np.testing.assert_array_equal(px, from_file[..., ::-1])
    px_bgr, _, _ = read_image(image, color="BGR")  # color is for arrays: a PIL image is always RGB
    np.testing.assert_array_equal(px_bgr, px)


def test_pil_float_and_32_bit_images_mean_what_arrays_mean():
    Image = pytest.importorskip("PIL.Image", reason="the PIL tests need Pillow (pip install -e '.[dev]')")
    f = np.array([[0.0, 1.0, 0.5]], np.float32)
    px, _, where = read_image(Image.fromarray(f, "F"))
    assert px[0, :, 0].tolist() == [0, 255, 128] and where == "Image(3x1, F)"
    with pytest.raises(InputError, match=r"Image\(3x1, F\): float images must be in \[0, 1\]"):
        read_image(Image.fromarray(f * 2, "F"))
    i = np.array([[0, 65535, 257]], np.int32)  # 16-bit gray as Pillow < 10 opened it (mode I)
    px, _, _ = read_image(Image.fromarray(i, "I"))
    assert px[0, :, 0].tolist() == [0, 255, 1]
    with pytest.raises(InputError, match=r"Image\(3x1, I\): integer pixels must be in \[0, 65535\]"):
        read_image(Image.fromarray(i * 2, "I"))


def test_a_pil_image_too_large_or_truncated_is_named(tmp_path):
    path, _ = pillow_png(tmp_path, "RGB")
    from PIL import Image

    with pytest.raises(InputError, match=r"RGB.png: 17x13 is above max_pixels=100"):
        read_image(Image.open(path), max_pixels=100)  # from the size Pillow read, before the pixels
    cut = tmp_path / "cut.png"
    cut.write_bytes(path.read_bytes()[:200])  # the header, part of the pixels
    with pytest.raises(InputError, match=r"cut.png: Pillow could not give its pixels"):
        read_image(Image.open(cut))


@pytest.mark.parametrize(
    "arg,message",
    [
        (b"", r"bytes of 0 bytes: empty"),
        (b"\xff\xd8 not a jpeg", "bytes of 13 bytes: not a readable image"),
        (io.BytesIO(b"GIF89a garbage"), "BytesIO stream: not a readable image"),
        (io.StringIO("text"), "StringIO stream: a stream must be opened in binary mode"),
    ],
)
def test_bad_bytes_and_streams_get_clear_errors(arg, message):
    with pytest.raises(InputError, match=message):
        read_image(arg)


@pytest.mark.parametrize("shape", [(1, 1), (37, 53), (300, 17), (1030, 2001)])
@pytest.mark.parametrize(
    "ext,params",
    [
        (".png", []),
        (".jpg", []),
        (".jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]),  # SOF2
        (".bmp", []),
        (".gif", []),
        (".webp", [cv2.IMWRITE_WEBP_QUALITY, 80]),  # VP8
        (".webp", [cv2.IMWRITE_WEBP_QUALITY, 101]),  # VP8L (lossless)
    ],
)
def test_the_header_gives_the_size_the_decoder_gives(shape, ext, params):
    img = np.random.default_rng(0).integers(0, 255, shape + (3,), dtype=np.uint8)
    ok, buf = cv2.imencode(ext, img, params)
    decoded = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    assert stored_size(buf.tobytes()) == (decoded.shape[1], decoded.shape[0]) == (shape[1], shape[0])


def test_the_header_size_of_webp_with_alpha_and_jpeg_after_exif():
    rgba = np.zeros((45, 71, 4), np.uint8)
    ok, buf = cv2.imencode(".webp", rgba, [cv2.IMWRITE_WEBP_QUALITY, 80])
    assert buf.tobytes()[12:16] == b"VP8X" and stored_size(buf.tobytes()) == (71, 45)
    ok, jpeg = cv2.imencode(".jpg", np.zeros((24, 40, 3), np.uint8))
    assert stored_size(with_exif_orientation(jpeg.tobytes(), 6)) == (40, 24)  # stored, not displayed, size
    assert stored_size(b"II*\x00 a TIFF: not parsed") is None and stored_size(b"") is None


def test_the_header_size_of_an_os2_bitmap():
    # BITMAPCOREHEADER (12 bytes) holds 16-bit sizes: read as the usual 32-bit ones, this 5x3
    # image claimed 196613 x 1572865 pixels and was refused as too large.
    import struct

    w, h = 5, 3
    pixels = bytes((w * 3 + 3) // 4 * 4 * h)  # 24-bit rows padded to 4 bytes
    core = struct.pack("<IHHHH", 12, w, h, 1, 24)
    bmp = b"BM" + struct.pack("<IHHI", 26 + len(pixels), 0, 0, 26) + core + pixels
    decoded = cv2.imdecode(np.frombuffer(bmp, np.uint8), cv2.IMREAD_UNCHANGED)
    assert stored_size(bmp) == (decoded.shape[1], decoded.shape[0]) == (5, 3)
    assert read_image(bmp, max_pixels=15)[0].shape == (3, 5, 3)


def _png_header(width, height):
    """The first 33 bytes of a PNG (signature, IHDR) and nothing after: no decoder can read it."""
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))


def test_an_oversized_image_is_refused_from_its_header_before_decoding(tmp_path):
    # A decompression bomb: a claimed 100 000 x 100 000 gray PNG (10 GB decoded). The header
    # alone names the size; decoding it would need the memory (here: it fails to decode at all,
    # so the size in the message can only have come from the header).
    bomb = _png_header(100_000, 100_000)
    with pytest.raises(InputError, match="bytes of 33 bytes: 100000x100000 is above max_pixels=64000000"):
        read_image(bomb, max_pixels=64_000_000)
    path = tmp_path / "bomb.png"
    path.write_bytes(bomb)
    with pytest.raises(InputError, match="bomb.png: 100000x100000 is above max_pixels=1000"):
        read_image(path, max_pixels=1000)
    with pytest.raises(InputError, match="bomb.png: not a readable image"):
        read_image(path)  # no limit: it goes to the decoder, which cannot read it
    # A real image: refused at the same limit either way, admitted at its own size.
    ok, png = cv2.imencode(".png", np.zeros((20, 30), np.uint8))
    with pytest.raises(InputError, match="30x20 is above max_pixels=599"):
        read_image(png.tobytes(), max_pixels=599)
    assert read_image(png.tobytes(), max_pixels=600)[0].shape == (20, 30, 3)
    with pytest.raises(InputError, match=r"array\(20, 30\): 30x20 is above max_pixels=599"):
        read_image(np.zeros((20, 30), np.uint8), max_pixels=599)



def test_a_header_walk_is_bounded():
    # A JPEG of 70000 empty segments before its frame header: refused after 65536, not walked
    # to its end (a file of millions of tiny segments could keep the walk going for minutes).
    import struct

    ok, jpeg = cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))
    segment = b"\xff\xe5" + struct.pack(">H", 2)  # an empty APP5
    with pytest.raises(InputError, match="more than 65536 segments before the image data"):
        read_image(jpeg.tobytes()[:2] + segment * 70000 + jpeg.tobytes()[2:])
    assert read_image(jpeg.tobytes()[:2] + segment * 1000 + jpeg.tobytes()[2:])[0].shape == (8, 8, 3)
