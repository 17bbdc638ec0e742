"""Golden frames (tests/data/frames/*.bin): the worker's decoder reads the frames that
tests/cpp/frame_golden_test.cc decodes in C++, and refuses truncated or foreign ones."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pyfunc import _worker

FRAMES = Path(__file__).resolve().parents[1] / "data" / "frames"


def decode(name):
    data = bytearray((FRAMES / name).read_bytes())
    return _worker.decode_frame(data, 0, len(data))


def test_the_golden_frames_decode_to_what_was_encoded():
    df, shape, _, _ = decode("dataframe.bin")
    assert shape == _worker.SHAPE_DATAFRAME
    assert list(df.columns) == ["a", "s", "t"]
    assert df["a"].tolist()[:2] == [1.0, 2.0] and np.isnan(df["a"][2])
    assert df["s"].tolist() == ["x", None, "z"]
    assert df["t"].dtype == np.dtype("datetime64[ns]") and pd.isna(df["t"][1])

    df, shape, _, tensors = decode("dict_tensors.bin")
    assert shape == _worker.SHAPE_COLUMNS
    assert tensors[1].dtype == np.float32 and tensors[1].shape == (3, 3)
    np.testing.assert_array_equal(tensors[1], np.full((3, 3), 0.25, dtype=np.float32))

    _, shape, _, tensors = decode("int16_3d.bin")
    assert shape == _worker.SHAPE_ARRAY1D and tensors[0].shape == (2, 2, 3) and tensors[0].dtype == np.int16

    df, _, _, tensors = decode("array_cells.bin")
    assert [c.tolist() for c in df["vec"]] == [[1.0, 2.0], [3.0, 4.0]]
    assert df["b"].tolist() == [b"\x00x", b"y"]

    df, shape, _, _ = decode("series_bools.bin")
    assert shape == _worker.SHAPE_SERIES and df["flag"].tolist() == [True, False, None]

    df, shape, _, _ = decode("json_object.bin")
    assert shape == _worker.SHAPE_JSON and df.iloc[0, 0] == '{"x": "not a table"}'


@pytest.mark.parametrize("name", sorted(p.name for p in FRAMES.glob("*.bin")))
def test_truncated_and_foreign_frames_are_refused(name):
    data = (FRAMES / name).read_bytes()
    for cut in (0, 63, len(data) // 2):
        with pytest.raises((_worker.FrameError, ValueError, IndexError)):
            _worker.decode_frame(bytearray(data[:cut]), 0, cut)
    other = bytearray(data)
    other[4] = 2  # version 2
    with pytest.raises(_worker.FrameError, match="bad frame header"):
        _worker._decode_frame(other, 0, len(other))
