"""Writes the hand-made seeds of every fuzz target into fuzz/seeds/<target>/, from the
repository's data files, configs and model directories and the README's request examples.

Run from the repository root: `python3 fuzz/seeds.py [MODEL_DIR...]` (the Parquet seeds need
pyarrow); each MODEL_DIR (say, one `iris-trainer train` just wrote, in today's format) is one
more model_dir seed beside the committed fixtures.
The campaign's corpora (fuzz/corpus/<target>/, minimised with `cargo fuzz cmin`) grew from these.
"""

import gzip
import io
import json
import pathlib
import struct
import sys
from decimal import Decimal

ROOT = pathlib.Path(__file__).resolve().parent.parent
SEEDS = ROOT / "fuzz" / "seeds"
SEPARATOR = b"\0\0mpk\0\0"


def head(path, lines):
    return b"".join(path.read_bytes().splitlines(keepends=True)[:lines])


def put(target, name, data):
    d = SEEDS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


tables = {name: head(ROOT / "data" / f"{name}.csv", 40) for name in ("iris", "penguins", "diabetes")}
tables["semicolon"] = tables["iris"].replace(b",", b";")
tables["tab-crlf"] = tables["penguins"].replace(b",", b"\t").replace(b"\n", b"\r\n")
tables["quoted"] = b'name,"note, with comma",x\n"a ""b""",x,1\n"c",\'y\',2.5\n,NA,-3e-2\n'
tables["headerless"] = b"5.1,3.5,1.4,0.2,setosa\n6.7,3.0,5.2,2.3,virginica\n"
tables["bom-blanks"] = b"\xef\xbb\xbfa,b,label\n1,,x\n?,2,y\nnull,NaN,x\n"

for name, text in tables.items():
    # csv: two bytes of settings (detect everything; blocks of 33 bytes, two columns).
    put("csv", name, b"\x00\x20" + text)
    put("csv", name + "-given", b"\x01\xc5" + text)
    put("encode", name, text)
    put("gzip_csv", name + "-compressed-here", b"\x01" + text)
    put("gzip_csv", name + "-file", b"\x00" + gzip.compress(text))
put("gzip_csv", "truncated", b"\x00" + gzip.compress(tables["iris"])[:-9])

for toml in sorted((ROOT / "configs").glob("*.toml")):
    kind = b"\x01" if toml.name.startswith("sweep") else b"\x00"
    put("toml", toml.stem, kind + toml.read_bytes())
put("toml", "k8s-configmap", b"\x00" + (ROOT / "deploy/kubernetes/base/mlp.toml").read_bytes())

for model in sorted((ROOT / "tests" / "fixtures").glob("v*-*/")):
    body = (model / "model.json").read_bytes() + SEPARATOR + (model / "model.mpk").read_bytes()
    put("model_dir", model.name, b"\x00" + body)
    put("model_dir", model.name + "-checksum-set", b"\x01" + body)
for extra in map(pathlib.Path, sys.argv[1:]):
    body = (extra / "model.json").read_bytes() + SEPARATOR + (extra / "model.mpk").read_bytes()
    put("model_dir", extra.name, b"\x01" + body)

# serve: byte 0 = (route << 1) | model (0 penguins, 1 diabetes); bytes 1-2 = the binary
# extension's JSON header length (little-endian); then the body.
PENGUIN = {"island": "Torgersen", "bill_length_mm": 39.1, "bill_depth_mm": 18.7,
           "flipper_length_mm": 181, "body_mass_g": 3750, "sex": "male", "year": 2007}
DIABETES = dict(zip(["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"],
                    [59.0, 2.0, 32.1, 101.0, 157.0, 93.2, 38.0, 4.0, 4.8598, 87.0]))


def serve(name, route, model, body, header_length=0):
    put("serve", name, bytes([(route << 1) | model]) + struct.pack("<H", header_length) + body)


for model, row in ((0, PENGUIN), (1, DIABETES)):
    cols = list(row)
    vals = list(row.values())
    tag = ("penguins", "diabetes")[model]
    serve(f"rest-object-{tag}", 0, model, json.dumps(row).encode())
    serve(f"rest-instances-{tag}", 0, model, json.dumps({"instances": [vals, vals]}).encode())
    serve(f"rest-query-{tag}", 1, model, "&".join(f"{k}={v}" for k, v in row.items()).encode())
    oip = {"id": "1", "inputs": [
        {"name": c, "shape": [1], "datatype": "BYTES" if isinstance(v, str) else "FP32",
         "data": [v]} for c, v in row.items()], "outputs": [{"name": "label"}]}
    serve(f"oip-json-{tag}", 2, model, json.dumps(oip).encode())
    serve(f"oip-version-{tag}", 7, model, json.dumps(oip).encode())
    # The binary extension: FP32 inputs as raw little-endian bytes, BYTES as 4-byte lengths.
    binary = {"inputs": [], "outputs": [{"name": "label", "parameters": {"binary_data": True}}]}
    raw = b""
    for c, v in row.items():
        data = (struct.pack("<I", len(v)) + v.encode()) if isinstance(v, str) else struct.pack("<f", v)
        binary["inputs"].append({"name": c, "shape": [1],
                                 "datatype": "BYTES" if isinstance(v, str) else "FP32",
                                 "parameters": {"binary_data_size": len(data)}})
        raw += data
    header = json.dumps(binary).encode()
    serve(f"oip-binary-{tag}", 3, model, header + raw, len(header))
    split = {"dataframe_split": {"columns": cols, "data": [vals]}}
    serve(f"mlflow-split-{tag}", 4, model, json.dumps(split).encode())
    serve(f"mlflow-records-{tag}", 4, model, json.dumps({"dataframe_records": [row]}).encode())
    serve(f"mlflow-inputs-{tag}", 4, model,
          json.dumps({"inputs": {c: [v] for c, v in row.items()},
                      "params": {"predict_method": "predict_proba"}}).encode())
    serve(f"mlflow-pandas-split-{tag}", 6, model, json.dumps(split["dataframe_split"]).encode())
    csv = ",".join(cols) + "\n" + ",".join(str(v) for v in vals) + "\n"
    serve(f"mlflow-csv-{tag}", 5, model, csv.encode())

try:
    import pyarrow as pa
    import pyarrow.parquet as pq
except ImportError:
    print("pyarrow is not installed: no Parquet seeds")
else:
    import pyarrow.csv as pacsv

    for name in ("iris", "penguins", "diabetes"):
        table = pacsv.read_csv(io.BytesIO(tables[name]))
        for codec in ("snappy", "none", "zstd"):
            out = io.BytesIO()
            pq.write_table(table, out, compression=codec, row_group_size=16)
            put("parquet", f"{name}-{codec}", out.getvalue())
    kinds = pa.table({
        "i64": pa.array([1, None, 3], pa.int64()), "i8": pa.array([1, 2, None], pa.int8()),
        "f16": pa.array([1.5, None, 2.0], pa.float16()), "b": pa.array([True, None, False]),
        "s": pa.array(["a", None, "b"]), "d": pa.array(["x", "y", "x"]).dictionary_encode(),
        "ls": pa.array(["p", "q", None], pa.large_string()),
        "ts": pa.array([0, 1, None], pa.timestamp("s")), "date": pa.array([0, 1, 2], pa.date32()),
        "dec": pa.array([Decimal("1.25"), None, Decimal("-3")], pa.decimal128(5, 2)),
    })
    for version in ("1.0", "2.6"):
        out = io.BytesIO()
        pq.write_table(kinds, out, version=version, use_dictionary=True)
        put("parquet", f"types-{version}", out.getvalue())
