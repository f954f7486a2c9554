"""MLflow's `python_function` flavor of an iris-trainer model: `model.onnx` run by onnxruntime.

Written into every MLflow model directory iris-trainer logs or exports (`code/`), and named by
its `MLmodel` as the flavor's `loader_module`. MLflow's own `mlflow.onnx` loader cannot serve this
graph from a DataFrame: it feeds each column as a rank-1 array (the graph takes one [N, 1] input
per column) and flattens every output into one DataFrame column (the probabilities are [N, C]).

`predict(df)` returns each row's label (a classifier) or value (a regressor), as iris-trainer's
`predict` and its `/invocations` do; `params={"predict_method": "predict_proba"}` returns each
row's class probabilities, as a DataFrame with a column per class. Columns are matched by name;
others are ignored. Missing values are None, NaN or one of the model's missing-value markers;
yes/no columns take booleans, 1/0 or the words iris-trainer reads (true/false, yes/no, y/n, t/f).
"""

import json
import math

import numpy as np
import onnxruntime
import pandas as pd

# The words iris-trainer reads in a yes/no column, compared case-insensitively.
_BOOLEAN = {"false": 0.0, "no": 0.0, "n": 0.0, "f": 0.0, "0": 0.0,
            "true": 1.0, "yes": 1.0, "y": 1.0, "t": 1.0, "1": 1.0}


def _missing(value, markers):
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip() in markers


class IrisTrainerModel:
    """The ONNX session and what its metadata says about the columns."""

    def __init__(self, path):
        self.session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        meta = self.session.get_modelmeta().custom_metadata_map
        self.task = meta["task"]
        self.columns = json.loads(meta["features"])
        self.input_names = json.loads(meta["inputs"])
        self.kinds = json.loads(meta["kinds"])
        self.markers = set(json.loads(meta["missing_values"]))
        # What a missing category is fed as: one of the strings that mean missing.
        self.blank = "" if "" in self.markers or not self.markers else sorted(self.markers)[0]
        self.classes = json.loads(meta["classes"]) if self.task == "classification" else []
        types = {i.name: i.type for i in self.session.get_inputs()}
        self.types = [types[name] for name in self.input_names]

    def _number(self, column, kind, value):
        if _missing(value, self.markers):
            return math.nan
        if isinstance(value, (bool, np.bool_)):
            return float(value)
        if isinstance(value, str):
            word = value.strip()
            if kind == "boolean":
                if word.lower() in _BOOLEAN:
                    return _BOOLEAN[word.lower()]
            else:
                try:
                    return float(word)
                except ValueError:
                    pass
            raise ValueError(f"column {column!r}: {value!r} is not a {kind} value")
        return float(value)

    def _feeds(self, df):
        absent = [c for c in self.columns if c not in df.columns]
        if absent:
            raise ValueError(f"the input has no column {', '.join(map(repr, absent))}; "
                             f"this model reads {', '.join(map(repr, self.columns))}")
        feeds = {}
        for column, name, kind, onnx_type in zip(self.columns, self.input_names, self.kinds,
                                                 self.types):
            values = df[column].tolist()
            if onnx_type == "tensor(string)":
                text = [self.blank if _missing(v, self.markers) else str(v) for v in values]
                feeds[name] = np.array(text, dtype=object).reshape(-1, 1)
            else:
                numbers = [self._number(column, kind, v) for v in values]
                feeds[name] = np.array(numbers, dtype=np.float32).reshape(-1, 1)
        return feeds

    def predict(self, model_input, params=None):
        method = (params or {}).get("predict_method", "predict")
        if method not in ("predict", "predict_proba"):
            raise ValueError(f'predict_method must be "predict" or "predict_proba", got {method!r}')
        df = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        feeds = self._feeds(df)
        if self.task == "regression":
            if method == "predict_proba":
                raise ValueError("predict_method predict_proba needs a classifier; "
                                 "this model predicts a number")
            (value,) = self.session.run(["value"], feeds)
            return value.astype(np.float64)
        label, probabilities = self.session.run(["label", "probabilities"], feeds)
        if method == "predict_proba":
            return pd.DataFrame(probabilities.astype(np.float64), columns=self.classes)
        return label.astype(object)


def _load_pyfunc(path):
    """Called by `mlflow.pyfunc.load_model` with the flavor's `data`: the model.onnx file."""
    return IrisTrainerModel(path)
