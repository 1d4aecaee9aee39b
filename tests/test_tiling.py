import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crackcli.data.tiling import Window, axis_origins, crop, grid


def coverage(width, height, windows):
    covered = np.zeros((height, width), bool)
    for w in windows:
        covered[max(w.y, 0) : w.y + w.size, max(w.x, 0) : w.x + w.size] = True
    return covered


@settings(max_examples=200, deadline=None)
@given(
    length_w=st.integers(1, 700),
    length_h=st.integers(1, 700),
    size=st.integers(1, 256),
    stride_factor=st.floats(0.1, 1.5),
    edge=st.sampled_from(["shift", "pad", "drop"]),
)
def test_grid_properties(length_w, length_h, size, stride_factor, edge):
    stride = max(1, int(size * stride_factor))
    windows = grid(length_w, length_h, size, stride, edge)
    assert len(set(windows)) == len(windows)
    if edge in ("shift", "drop"):
        assert all(0 <= w.x and w.x + size <= length_w and 0 <= w.y and w.y + size <= length_h for w in windows)
    if edge == "drop":
        assert all(w.x % stride == 0 and w.y % stride == 0 for w in windows)
    if edge == "pad" or (edge == "shift" and length_w >= size and length_h >= size):
        if stride <= size:  # with gaps between windows (stride > size) full coverage is impossible by design
            assert coverage(length_w, length_h, windows).all()
    if edge == "shift" and (length_w < size or length_h < size):
        assert windows == []
    if edge == "pad":
        assert len(windows) >= 1 and all(w.x < length_w and w.y < length_h for w in windows)


def test_counts_for_each_edge_rule():
    # 500 = 2 × 224 + 52: shift adds a window moved back to 276, pad a third padded one, drop none.
    assert axis_origins(500, 224, 224, "shift") == [0, 224, 276]
    assert axis_origins(500, 224, 224, "pad") == [0, 224, 448]
    assert axis_origins(500, 224, 224, "drop") == [0, 224]
    assert axis_origins(448, 224, 224, "shift") == [0, 224]
    assert axis_origins(100, 224, 224, "pad") == [0]
    assert axis_origins(7000, 224, 224, "shift")[-1] == 7000 - 224
    assert len(grid(7000, 6000, 224, 224, "shift")) == 32 * 27


def test_stride_half_patch_overlaps():
    assert axis_origins(448, 224, 112, "shift") == [0, 112, 224]


def test_crop_inside_is_a_view_and_outside_is_reflected():
    image = np.arange(10 * 12, dtype=np.uint8).reshape(10, 12)
    inside = crop(image, Window(2, 3, 4))
    assert np.shares_memory(inside, image)
    np.testing.assert_array_equal(inside, image[3:7, 2:6])
    padded = crop(image, Window(8, 6, 6))
    assert padded.shape == (6, 6)
    np.testing.assert_array_equal(padded[:4, :4], image[6:10, 8:12])
    np.testing.assert_array_equal(padded[4, :4], image[8, 8:12])  # reflect-101 mirrors about the last row


def test_invalid_geometry_is_rejected():
    with pytest.raises(ValueError):
        axis_origins(100, 0, 10, "shift")
    with pytest.raises(ValueError):
        axis_origins(100, 10, 10, "wrap")
