import io

import cv2
import numpy as np
import pytest
from PIL import Image

from crackcli.io.atomic import atomic_write_bytes
from crackcli.io.images import ImageReadError, read_gray, read_mask, read_rgb, write_image


def pixels(h=40, w=60, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_png_round_trip_is_exact(tmp_path):
    data = pixels()
    write_image(tmp_path / "a.png", data)
    np.testing.assert_array_equal(read_rgb(tmp_path / "a.png"), data)


def test_exif_orientation_is_applied(tmp_path):
    data = pixels(30, 50)
    image = Image.fromarray(data)
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise for display
    image.save(tmp_path / "r.jpg", exif=exif, quality=100)
    assert read_rgb(tmp_path / "r.jpg").shape == (50, 30, 3)


def test_grey_pixels_are_oriented_and_scaled_as_the_colour_ones(tmp_path):
    """Tracing reads the photo again in grey at full size: it must be the colour photo's own pixels."""
    data = cv2.GaussianBlur(pixels(60, 100), (0, 0), 3)
    image = Image.fromarray(data)
    exif = image.getexif()
    exif[0x0112] = 6
    image.save(tmp_path / "r.jpg", exif=exif, quality=100)
    colour, grey = read_rgb(tmp_path / "r.jpg"), read_gray(tmp_path / "r.jpg")
    assert grey.shape == colour.shape[:2] == (100, 60)
    assert np.abs(cv2.cvtColor(colour, cv2.COLOR_RGB2GRAY).astype(int) - grey).max() <= 3


@pytest.mark.parametrize("reduce", [1, 2, 4, 8])
def test_jpeg_pixels_come_in_rgb_order_full_and_reduced(tmp_path, reduce):
    """JPEGs are decoded straight to RGB (no conversion pass): red must stay red, as Pillow reads it."""
    data = np.zeros((64, 96, 3), np.uint8)
    data[:, :32, 0], data[:, 32:64, 1], data[:, 64:, 2] = 220, 180, 140  # red, green, blue bands
    Image.fromarray(data).save(tmp_path / "bands.jpg", quality=95)
    expected = np.asarray(Image.open(tmp_path / "bands.jpg").convert("RGB").reduce(reduce), np.int16)
    decoded = read_rgb(tmp_path / "bands.jpg", reduce=reduce).astype(np.int16)
    assert decoded.shape == expected.shape
    assert np.abs(decoded - expected).mean() < 4  # the two decoders differ by rounding only
    assert decoded[:, 0].argmax(axis=1).tolist() == [0] * len(decoded)  # the left band is red


@pytest.mark.parametrize("mode", ["L", "RGBA", "CMYK", "I;16"])
def test_modes_become_rgb_uint8(tmp_path, mode):
    base = Image.fromarray(pixels())
    image = base.convert("L").convert("I;16") if mode == "I;16" else base.convert(mode)
    suffix = ".jpg" if mode == "CMYK" else ".tiff" if mode == "I;16" else ".png"
    image.save(tmp_path / f"m{suffix}")
    out = read_rgb(tmp_path / f"m{suffix}")
    assert out.shape == (40, 60, 3) and out.dtype == np.uint8


def test_16_bit_rgb_tiff_is_scaled_to_8_bit(tmp_path):
    import cv2

    data = pixels()
    cv2.imwrite(str(tmp_path / "deep.tiff"), data[..., ::-1].astype(np.uint16) * 257)
    np.testing.assert_array_equal(read_rgb(tmp_path / "deep.tiff"), data)


@pytest.mark.parametrize(
    "content, reason",
    [(b"", "empty file"), (b"not an image at all", "not a readable image")],
)
def test_bad_files_name_the_file_and_reason(tmp_path, content, reason):
    path = tmp_path / "bad.jpg"
    path.write_bytes(content)
    with pytest.raises(ImageReadError, match=reason) as info:
        read_rgb(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_truncated_files_are_refused(tmp_path, suffix):
    buffer = io.BytesIO()
    Image.fromarray(pixels(200, 200)).save(buffer, format="JPEG" if suffix == ".jpg" else "PNG")
    path = tmp_path / f"cut{suffix}"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(ImageReadError, match="truncated"):
        read_rgb(path)


def test_pixel_limit_is_checked_before_decoding(tmp_path):
    write_image(tmp_path / "big.png", pixels(100, 100))
    with pytest.raises(ImageReadError, match="`max_pixels`"):
        read_rgb(tmp_path / "big.png", max_pixels=5000)


def test_folder_with_image_name_is_refused(tmp_path):
    (tmp_path / "looks.jpg").mkdir()
    with pytest.raises(ImageReadError, match="is a folder"):
        read_rgb(tmp_path / "looks.jpg")


def test_mask_threshold(tmp_path):
    mask = np.zeros((10, 10), np.uint8)
    mask[2:4] = 255
    mask[5] = 100  # dim pixels are not crack
    write_image(tmp_path / "m.png", mask)
    assert read_mask(tmp_path / "m.png").sum() == 20


def test_masks_in_the_formats_labelling_tools_write_read_as_the_same_crack(tmp_path):
    from PIL import Image

    crack = np.zeros((12, 16), bool)
    crack[3:5, 2:14] = True
    crack[8, 6] = True
    voc = np.zeros((12, 16), np.uint8)
    voc[crack] = 1
    voc[0, :] = 255  # VOC's unlabelled border: not crack
    palette = Image.fromarray(voc, mode="P")
    palette.putpalette([0, 0, 0, 128, 0, 0] + [0, 0, 0] * 253 + [224, 224, 192])
    palette.save(tmp_path / "voc.png")
    red = np.zeros((12, 16, 3), np.uint8)
    red[crack] = (255, 0, 0)
    gray16 = crack.astype(np.uint16) * 65535
    written = {
        "binary.png": crack.astype(np.uint8) * 255,
        "zero-one.png": crack.astype(np.uint8),
        "zero-one-16.tif": crack.astype(np.uint16),
        "gray16.png": gray16,
        "red.png": red,
        "red-on-alpha.png": np.dstack([red, np.full((12, 16), 255, np.uint8)]),
    }
    for name, pixels in written.items():
        if pixels.ndim == 3:
            Image.fromarray(pixels).save(tmp_path / name)
        else:
            cv2.imwrite(str(tmp_path / name), pixels)  # 16-bit gray as it is
    for name in [*written, "voc.png"]:
        np.testing.assert_array_equal(read_mask(tmp_path / name), crack, err_msg=name)


def test_a_tiff_of_several_pictures_is_refused_and_one_with_a_thumbnail_read(tmp_path):
    first, second = (Image.fromarray(pixels(40, 60, seed)) for seed in (1, 2))
    first.save(tmp_path / "pages.tif", save_all=True, append_images=[second])
    with pytest.raises(ImageReadError, match="2 full-size pages"):
        read_rgb(tmp_path / "pages.tif")
    first.save(tmp_path / "thumb.tif", save_all=True, append_images=[first.resize((15, 10))])
    np.testing.assert_array_equal(read_rgb(tmp_path / "thumb.tif"), pixels(40, 60, 1))


def test_heic_photos_from_phones_are_read_in_full_and_reduced(tmp_path):
    from crackcli.io.images import is_image_path, read_header

    ys, xs = np.mgrid[0:90, 0:120]
    smooth = np.dstack([xs * 2, ys * 2, 255 - xs]).astype(np.uint8)
    import pillow_heif  # a dependency: writing the test photo with it, reading through crack

    pillow_heif.from_pillow(Image.fromarray(smooth)).save(tmp_path / "phone.HEIC", quality=95)
    assert is_image_path(tmp_path / "phone.HEIC") and read_header(tmp_path / "phone.HEIC").size == (120, 90)
    read = read_rgb(tmp_path / "phone.HEIC")
    assert read.shape == (90, 120, 3) and np.abs(read.astype(int) - smooth).mean() < 4
    assert read_rgb(tmp_path / "phone.HEIC", reduce=4).shape == (23, 30, 3)
    (tmp_path / "broken.heic").write_bytes(b"\x00\x00\x00\x18ftypheic" + bytes(40))
    with pytest.raises(ImageReadError, match="broken.heic"):
        read_rgb(tmp_path / "broken.heic")


def test_atomic_write_leaves_no_part_file(tmp_path):
    target = tmp_path / "sub" / "file.bin"
    atomic_write_bytes(target, b"abc")
    atomic_write_bytes(target, b"defg")
    assert target.read_bytes() == b"defg"
    assert [p.name for p in target.parent.iterdir()] == ["file.bin"]


def test_atomic_write_respects_umask_not_mkstemp_private_mode(tmp_path):
    import os

    target = tmp_path / "shared.bin"
    atomic_write_bytes(target, b"x")
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask
