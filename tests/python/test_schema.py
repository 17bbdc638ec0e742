"""Input-schema enforcement against MLflow's own ``_enforce_schema``, case by case: the
same result (values, dtypes, column order) or the same error."""

import datetime
import decimal
import json

import numpy as np
import pandas as pd
import pytest

from pyfunc import _schema


def mlflow_schema(*specs):
    from mlflow.types import ColSpec, Schema, TensorSpec

    cols = []
    for spec in specs:
        if spec[0] == "tensor":
            _, name, dtype, shape = spec
            cols.append(TensorSpec(np.dtype(dtype), shape, name))
        else:
            t, name = spec[0], spec[1]
            required = spec[2] if len(spec) > 2 else True
            cols.append(ColSpec(t, name, required=required))
    return Schema(cols)


CASES = [
    ("exact", pd.DataFrame({"a": [1.0, 2.0], "b": [3, 4]}), [("double", "a"), ("long", "b")]),
    ("int32 to double", pd.DataFrame({"a": np.array([1, 2], dtype=np.int32)}), [("double", "a")]),
    ("int64 to double refused", pd.DataFrame({"a": [1, 5]}), [("double", "a")]),
    ("int64 of 0/1 to float", pd.DataFrame({"a": [0, 1]}), [("float", "a")]),
    ("float32 to double", pd.DataFrame({"a": np.array([1.5], dtype=np.float32)}), [("double", "a")]),
    ("double to float refused", pd.DataFrame({"a": [1.5]}), [("float", "a")]),
    ("uint8 to long", pd.DataFrame({"a": np.array([1, 2], dtype=np.uint8)}), [("long", "a")]),
    ("float with NaN to long", pd.DataFrame({"a": [1.0, np.nan]}), [("long", "a")]),
    ("missing column", pd.DataFrame({"a": [1.0], "c": [2.0]}), [("double", "a"), ("double", "b")]),
    ("extra column dropped", pd.DataFrame({"x": [9], "a": [1.0]}), [("double", "a")]),
    ("reordered", pd.DataFrame({"b": [1.0], "a": ["s"]}), [("string", "a"), ("double", "b")]),
    ("optional absent", pd.DataFrame({"a": [1.0]}), [("double", "a"), ("double", "b", False)]),
    ("string from numbers refused", pd.DataFrame({"a": [1, 2]}), [("string", "a")]),
    ("object to long", pd.DataFrame({"a": pd.Series([1, 2], dtype=object)}), [("long", "a")]),
    ("dict of lists", {"a": [1.0, 2.0], "b": [3.0, 4.0]}, [("double", "a"), ("double", "b")]),
    ("dict of scalars", {"a": 1.0, "b": "x"}, [("double", "a"), ("string", "b")]),
    ("series", pd.Series([1.0, 2.0], name="a"), [("double", "a")]),
    ("ndarray unnamed", np.array([[1.0, 2.0], [3.0, 4.0]]), [("double", None), ("double", None)]),
    ("unnamed too few", np.array([[1.0], [3.0]]), [("double", None), ("double", None)]),
    ("scalar", 5.0, [("double", None)]),
    ("datetime seconds", pd.DataFrame({"t": np.array(["2024-01-01"], dtype="datetime64[s]")}), [("datetime", "t")]),
    ("datetime objects", pd.DataFrame({"t": [datetime.datetime(2024, 1, 2)]}, dtype=object), [("datetime", "t")]),
    ("bool", pd.DataFrame({"f": [True, False]}), [("boolean", "f")]),
    # MLflow converts any object column for a double with pandas.to_numeric.
    ("strings to double", pd.DataFrame({"a": ["1.5"]}), [("double", "a")]),
    ("object strings to double", pd.DataFrame({"a": pd.Series(["1.5", None], dtype=object)}), [("double", "a")]),
    ("object words to double refused", pd.DataFrame({"a": pd.Series(["abc"], dtype=object)}), [("double", "a")]),
    ("object Nones to double", pd.DataFrame({"a": pd.Series([None, None], dtype=object)}), [("double", "a")]),
    ("decimals to double", pd.DataFrame({"a": pd.Series([decimal.Decimal("1.5")], dtype=object)}),
     [("double", "a")]),
    # Strings and datetimes as each pandas makes them (pandas >= 3: the "str" dtype, NaN for
    # a missing string, microseconds for parsed datetimes).
    ("strings with a missing value", pd.DataFrame({"s": ["a", None]}), [("string", "s")]),
    ("string extension dtype", pd.DataFrame({"s": pd.array(["a", None], dtype="string")}), [("string", "s")]),
    ("strings as binary", pd.DataFrame({"b": ["a"]}), [("binary", "b")]),
    ("strings to datetime", pd.DataFrame({"t": ["2024-01-01", "2024-02-03 04:05:06"]}), [("datetime", "t")]),
    ("parsed datetimes", pd.DataFrame({"t": pd.to_datetime(["2024-01-01", None])}), [("datetime", "t")]),
    ("object strings to long refused", pd.DataFrame({"a": pd.Series(["1", "2"], dtype=object)}), [("long", "a")]),
    ("dict of string lists", {"a": ["x", "y"], "b": [1.0, 2.0]}, [("string", "a"), ("double", "b")]),
    ("tensor exact", np.zeros((2, 4)), [("tensor", None, "float64", (-1, 4))]),
    ("tensor wrong dtype", np.zeros((2, 4), dtype=np.int64), [("tensor", None, "float64", (-1, 4))]),
    ("tensor wrong shape", np.zeros((2, 3)), [("tensor", None, "float64", (-1, 4))]),
    ("tensor from frame", pd.DataFrame(np.zeros((2, 4))), [("tensor", None, "float64", (-1, 4))]),
    ("tensor from one column", pd.DataFrame({"x": [1, 2]}), [("tensor", None, "float32", (-1,))]),
    ("tensor frame wrong width", pd.DataFrame(np.zeros((2, 3))), [("tensor", None, "float64", (-1, 4))]),
    ("named tensors", {"x": np.zeros((2, 2)), "y": np.ones(2, dtype=np.int32)},
     [("tensor", "x", "float64", (-1, 2)), ("tensor", "y", "int32", (-1,))]),
    ("named tensor missing", {"x": np.zeros((2, 2))},
     [("tensor", "x", "float64", (-1, 2)), ("tensor", "y", "int32", (-1,))]),
    ("named tensor from frame", pd.DataFrame({"x": [1.0, 2.0]}), [("tensor", "x", "float64", (-1,))]),
]


def _same(got, want):
    if isinstance(want, pd.DataFrame):
        assert isinstance(got, pd.DataFrame)
        pd.testing.assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True))
    elif isinstance(want, dict):
        assert isinstance(got, dict) and list(got) == list(want)
        for k in want:
            _same(got[k], want[k])
    else:
        assert isinstance(got, np.ndarray) and got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name,data,specs", CASES, ids=[c[0] for c in CASES])
def test_enforcement_matches_mlflow(name, data, specs):
    from mlflow.exceptions import MlflowException
    from mlflow.models.utils import _enforce_schema

    schema = mlflow_schema(*specs)
    ours_specs = json.loads(schema.to_json())
    try:
        want = _enforce_schema(data, schema)
    except MlflowException as e:
        with pytest.raises(_schema.SchemaError) as got:
            _schema.enforce(data, ours_specs)
        assert str(got.value).split(" Hint:")[0] == e.message.split(" Hint:")[0]
        return
    _same(_schema.enforce(data, ours_specs), want)


def test_the_wrapped_message_names_data_and_schema():
    specs = json.loads(mlflow_schema(("double", "a"), ("long", "b", False)).to_json())
    with pytest.raises(_schema.SchemaError) as e:
        _schema.enforce_input_schema(pd.DataFrame({"b": [1]}), specs)
    assert str(e.value).startswith("Failed to enforce schema of data '")
    assert "with schema '['a': double (required), 'b': long (optional)]'. Error: Model is missing inputs ['a']." \
        in str(e.value)


def test_an_exact_frame_fits_and_is_enforced_into_mlflows_layout():
    """A frame that fits needs no enforcement in workers; in process the model gets the
    frame MLflow builds, laid out as MLflow lays it out: statsmodels' OLS predicted from a
    column view of a wider frame differed from MLflow in the last bits (pandas 3)."""
    from mlflow.models.utils import _enforce_schema

    specs = json.loads(mlflow_schema(("double", "a"), ("string", "s")).to_json())
    df = pd.DataFrame({"a": [1.0], "s": ["x"]})  # pandas >= 3: "s" is of the str dtype
    assert _schema.fits_input_schema(df, specs)
    pd.testing.assert_frame_equal(_schema.enforce(df, specs), df)
    assert not _schema.fits_input_schema(df[["s", "a"]], specs)
    df = pd.DataFrame({"a": [1.0], "s": pd.Series(["x"], dtype=object)})
    assert _schema.fits_input_schema(df, specs)

    schema = mlflow_schema(("double", "a"), ("double", "b"), ("double", "c"))
    wide = pd.DataFrame(np.arange(40, dtype=np.float64).reshape(10, 4), columns=["a", "b", "c", "d"])
    view = wide.iloc[[0, 3, 5, 9]].reset_index(drop=True)[["a", "b", "c"]]
    ours = np.asarray(_schema.enforce(view, json.loads(schema.to_json())))
    theirs = np.asarray(_enforce_schema(view, schema))
    assert (ours.flags["C_CONTIGUOUS"], ours.flags["F_CONTIGUOUS"]) == (
        theirs.flags["C_CONTIGUOUS"], theirs.flags["F_CONTIGUOUS"])
    np.testing.assert_array_equal(ours, theirs)


BEHAVE = __import__("pathlib").Path(__file__).resolve().parents[1] / "data" / "models" / "behave" / "behave_model.py"


@pytest.fixture(scope="module")
def typed_model(tmp_path_factory):
    """The behave model with a column signature: a double, a long and an optional string."""
    import pyfunc

    model = pyfunc.Model()
    model.signature = {
        "inputs": json.dumps([{"type": "double", "name": "a", "required": True},
                              {"type": "long", "name": "b", "required": True},
                              {"type": "string", "name": "s", "required": False}]),
        "outputs": None,
        "params": '[{"name": "mode", "type": "string", "default": "dtypes", "shape": null}]',
    }
    path = tmp_path_factory.mktemp("typed") / "model"
    pyfunc.save_model(str(path), loader_module="behave_model", code_path=[str(BEHAVE)], model=model)
    return str(path)


def test_predict_enforces_the_signature_in_process_and_out(typed_model):
    import pyfunc

    local = pyfunc.load_pyfunc(typed_model)
    remote = pyfunc.load_pyfunc(typed_model, env_manager="local")
    try:
        # Reordered, int32 for double, an extra column: the model sees the schema's frame.
        df = pd.DataFrame({"x": [0], "b": [7], "a": np.array([1], dtype=np.int32)})
        for model in (local, remote):
            for _ in range(2):  # the worker checks a frame layout once, then trusts it
                got = model.predict(df)
                assert got.to_dict("records") == [{"column": "a", "dtype": "float64"},
                                                   {"column": "b", "dtype": "int64"}]
            exact = model.predict(pd.DataFrame({"a": [1.0], "b": [2], "s": ["x"]}))
            assert list(exact["column"]) == ["a", "b", "s"]
        with pytest.raises(pyfunc.SchemaEnforcementError, match=r"Error: Model is missing inputs \['b'\]\."):
            local.predict(pd.DataFrame({"a": [1.0]}))
        # Out of process, the same error class and message as in process.
        bad = pd.DataFrame({"a": [1.0], "b": [2.5]})
        with pytest.raises(pyfunc.SchemaEnforcementError,
                           match=r"(?s)^Failed to enforce schema .* Can not safely convert float64 to int64") as got:
            remote.predict(bad)
        with pytest.raises(pyfunc.SchemaEnforcementError) as want:
            local.predict(bad)
        assert str(got.value) == str(want.value)
        assert remote.predict(pd.DataFrame({"a": [1.0], "b": [2]}))["column"].tolist() == ["a", "b"]
    finally:
        remote.close()


def test_a_malformed_input_signature_is_named():
    import pyfunc
    from pyfunc._loading import PyFuncModel

    class Echo:
        def predict(self, data):
            return data

    for inputs, message in (("{oops", "signature.inputs: not valid JSON"),
                            ('{"a": 1}', "signature.inputs: expected a list")):
        model = PyFuncModel({"signature": {"inputs": inputs}}, Echo())
        with pytest.raises(pyfunc.SchemaEnforcementError, match=message):
            model.predict(pd.DataFrame({"a": [1]}))


PARAM_SPECS = [("k", "long", 3, None), ("t", "double", 0.5, None), ("s", "string", "a", None),
               ("b", "boolean", False, None), ("l", "long", [1], (-1,))]
PARAM_CASES = [{"k": "5"}, {"k": 5.0}, {"k": 5.5}, {"k": np.int64(7)}, {"t": 1}, {"t": "x"}, {"b": "true"},
               {"b": 1}, {"s": 5}, {"l": [1, 2]}, {"l": 3}, {"k": [1]}, {"k": None}, {"l": [1, "a"]},
               {"k": "5", "s": 3}]


@pytest.mark.parametrize("params", PARAM_CASES, ids=[json.dumps(p, default=str) for p in PARAM_CASES])
def test_params_are_converted_or_refused_as_mlflow_does(params):
    """Params were passed as given: a long param got "5" and a double one got 1 (MLflow:
    "Invalid parameters found" and 1.0)."""
    from mlflow.exceptions import MlflowException
    from mlflow.models.utils import _enforce_params_schema
    from mlflow.types import ParamSchema, ParamSpec

    from pyfunc._loading import InvalidParametersError, apply_params_schema

    schema = ParamSchema([ParamSpec(n, t, d, shape=s) for n, t, d, s in PARAM_SPECS])
    ours = json.loads(schema.to_json())
    try:
        want = _enforce_params_schema(dict(params), schema)
    except MlflowException as e:
        with pytest.raises(InvalidParametersError) as got:
            apply_params_schema(dict(params), ours)
        if len([k for k in params if k in dict((n, 1) for n, *_ in PARAM_SPECS)]) == 1:
            assert str(got.value) == e.message
        else:  # MLflow lists the problems as a set, in no fixed order
            assert sorted(str(got.value)) == sorted(e.message)
        return
    got = apply_params_schema(dict(params), ours)
    assert got == want and [type(v) for v in got.values()] == [type(v) for v in want.values()]
