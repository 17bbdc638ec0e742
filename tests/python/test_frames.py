"""Golden frames (tests/data/frames/*.bin): the worker's decoder reads the frames that
tests/cpp/frame_golden_test.cc decodes in C++, and refuses truncated or foreign ones."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pyfunc import _columns, _worker

FRAMES = Path(__file__).resolve().parents[1] / "data" / "frames"


def decode(name):
    data = bytearray((FRAMES / name).read_bytes())
    return _worker.decode_frame(data, 0, len(data))


def test_the_golden_frames_decode_to_what_was_encoded():
    df, shape, _, _ = decode("dataframe.bin")
    assert shape == _columns.SHAPE_DATAFRAME
    assert list(df.columns) == ["a", "s", "t"]
    assert df["a"].tolist()[:2] == [1.0, 2.0] and np.isnan(df["a"][2])
    assert df["s"].tolist() == ["x", None, "z"]
    assert df["t"].dtype == np.dtype("datetime64[ns]") and pd.isna(df["t"][1])

    df, shape, _, tensors = decode("dict_tensors.bin")
    assert shape == _columns.SHAPE_COLUMNS
    assert tensors[1].dtype == np.float32 and tensors[1].shape == (3, 3)
    np.testing.assert_array_equal(tensors[1], np.full((3, 3), 0.25, dtype=np.float32))

    _, shape, _, tensors = decode("int16_3d.bin")
    assert shape == _columns.SHAPE_ARRAY1D and tensors[0].shape == (2, 2, 3) and tensors[0].dtype == np.int16

    df, _, _, tensors = decode("array_cells.bin")
    assert [c.tolist() for c in df["vec"]] == [[1.0, 2.0], [3.0, 4.0]]
    assert df["b"].tolist() == [b"\x00x", b"y"]

    df, shape, _, _ = decode("series_bools.bin")
    assert shape == _columns.SHAPE_SERIES and df["flag"].tolist() == [True, False, None]

    df, shape, _, _ = decode("json_object.bin")
    assert shape == _columns.SHAPE_JSON and df.iloc[0, 0] == '{"x": "not a table"}'


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


@pytest.mark.parametrize("prediction", [
    pd.DataFrame({"i": pd.array([1, None], dtype="Int64"), "s": ["x", None], "b": [True, None],
                  "t": pd.to_datetime(["2020-01-01", None]).astype("datetime64[us]"), "f32": np.float32([1.5, 2])}),
    pd.DataFrame({"vec": [np.arange(3, dtype=np.int16), np.arange(3, dtype=np.int16)]}),
    np.arange(6, dtype=np.uint8).reshape(3, 2),
])
def test_the_worker_reads_the_frames_it_writes(prediction):
    """A result frame the worker encodes from the codec's columns decodes to the values
    pandas holds (missing integers as NaN, missing booleans None, the datetime unit kept)."""
    shape, columns, rows = _columns.prediction_columns(prediction)
    total, write = _worker.encode_frame(shape, columns, rows)
    buf = bytearray(total)
    write(buf, 0)
    df, got_shape, _, tensors = _worker.decode_frame(buf, 0, total)
    assert got_shape == shape
    if isinstance(prediction, pd.DataFrame):
        want = prediction.astype({"i": "float64", "b": object}) if "i" in prediction else prediction
        pd.testing.assert_frame_equal(df, want, check_dtype="vec" not in prediction)
        if tensors:
            np.testing.assert_array_equal(tensors[0], np.stack(list(prediction["vec"])))
    else:
        np.testing.assert_array_equal(_columns.model_input(df, _columns.SHAPE_ARRAY2D), prediction)
