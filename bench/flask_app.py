"""The workshop's inference service: GET /prediction?slength=..&swidth=..&plength=..&pwidth=..

MODEL_PATH names the joblib file. As in the workshop, the model is loaded on every request;
LOAD_ONCE=1 is the fairer variant that loads it at start-up.
"""
import os

import joblib
import numpy as np
from flask import Flask, jsonify, request

app = Flask(__name__)
MODEL_PATH = os.environ.get("MODEL_PATH", "model.joblib")
_loaded = joblib.load(MODEL_PATH) if os.environ.get("LOAD_ONCE") == "1" else None


@app.route("/prediction")
def prediction():
    bundle = _loaded or joblib.load(MODEL_PATH)
    params = ["slength", "swidth", "plength", "pwidth"]
    x = np.array([[float(request.args[k]) for k in params]], dtype=np.float32)
    proba = bundle["model"].predict_proba(bundle["scaler"].transform(x))[0]
    i = int(np.argmax(proba))
    body = {k: float(request.args[k]) for k in params}
    body.update(species=str(bundle["model"].classes_[i]), probability=float(proba[i]))
    return jsonify(body)
