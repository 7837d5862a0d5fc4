"""Property-based tests (hypothesis) for the geometry the metrics rest on."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage

from benchmark.metrics.boxes import EIGHT_CONNECTED, box_from_map, iou_xyxy


@st.composite
def boxes(draw, limit=60):
    x0 = draw(st.integers(0, limit))
    y0 = draw(st.integers(0, limit))
    return x0, y0, draw(st.integers(x0, limit)), draw(st.integers(y0, limit))


maps = arrays(np.float32, st.tuples(st.integers(1, 12), st.integers(1, 12)),
              elements=st.floats(-1, 1, width=32, allow_nan=False))


@given(boxes(), boxes())
def test_iou_symmetric_and_bounded(a, b):
    v = iou_xyxy(a, b)
    assert 0.0 <= v <= 1.0 and v == iou_xyxy(b, a)
    assert iou_xyxy(a, a) == 1.0


@given(maps, st.floats(0.01, 1.0))
def test_box_contains_the_component_it_came_from(m, tau):
    box = box_from_map(m, tau)
    if box is None:  # no box exactly for a map with nothing positive or a constant map
        assert m.max() <= 0 or m.max() == m.min()
        return
    assert m.max() > 0 and m.max() > m.min()
    labels, _ = ndimage.label(m >= tau * m.max(), structure=EIGHT_CONNECTED)
    x0, y0, x1, y1 = box
    inside = labels[y0:y1 + 1, x0:x1 + 1]
    sizes = np.bincount(labels.ravel())[1:]
    best = int(np.argmax(sizes)) + 1
    assert (labels == best).sum() == (inside == best).sum()  # every pixel of the segment is inside
    rows, cols = np.nonzero(labels == best)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (y0, y1, x0, x1)  # and the box is tight


@settings(max_examples=200)
@given(maps, st.floats(0.01, 0.98), st.floats(0.0, 1.0))
def test_higher_threshold_never_grows_the_box_of_a_single_blob(m, low, frac):
    # Monotonicity holds for the thresholded set; with one blob (a unimodal map) the largest
    # segment at a higher threshold lies inside the one at a lower threshold.
    h, w = m.shape
    yy, xx = np.mgrid[0:h, 0:w]
    cy, cx = (h - 1) * frac, (w - 1) * (1 - frac)
    blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 8.0).astype(np.float32)
    high = low + (1.0 - low) * frac
    a, b = box_from_map(blob, low), box_from_map(blob, high)
    if blob.max() == blob.min():  # a 1 x 1 map is constant: no box at any threshold
        assert a is None and b is None
        return
    assert a[0] <= b[0] and a[1] <= b[1] and a[2] >= b[2] and a[3] >= b[3]


# values 0 or of magnitude >= 2**-100: scaled by 2**-20 they stay normal float32 numbers (subnormals lose bits)
normal_maps = arrays(np.float32, st.tuples(st.integers(1, 12), st.integers(1, 12)),
                     elements=st.one_of(st.just(0.0), st.floats(2.0 ** -100, 1, width=32),
                                        st.floats(-1, -(2.0 ** -100), width=32)))


@given(normal_maps, st.integers(-20, 20))
def test_box_invariant_to_positive_scaling(m, exponent):
    # powers of two scale normal float32 values exactly, so the thresholded set cannot change
    assert box_from_map(m, 0.15) == box_from_map(m * np.float32(2.0 ** exponent), 0.15)
