#!/usr/bin/env python3
"""Measures iris-trainer against the tools it replaces, in one run on one machine.

Run through scripts/bench.sh, which builds the release binary and prepares the peers.
Writes bench/results/results.json and bench/results/results.md and prints the table.
"""
import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IRIS = ROOT / "data" / "iris.csv"
FLOWER = ["5.1", "3.5", "1.4", "0.2"]

p = argparse.ArgumentParser()
p.add_argument("--bin", default=str(ROOT / "target" / "release" / "iris-trainer"))
p.add_argument("--python", default=sys.executable, help="python with scikit-learn, flask, gunicorn")
p.add_argument("--runs", type=int, default=10, help="runs per whole-process measurement")
p.add_argument("--http-seconds", type=int, default=5, help="seconds per load-generator run")
p.add_argument("--images", action="store_true", help="also time cold and code-change image builds")
p.add_argument("--engine", default="", help="container engine for image sizes (docker or podman)")
a = p.parse_args()

BIN, PY = os.path.abspath(a.bin), os.path.abspath(a.python)
work = Path(tempfile.mkdtemp(prefix="iris-bench."))
results = {"machine": {}, "training": {}, "throughput": {}, "predict": {}, "batch": {}, "http": {},
           "images": {}}


def sh(cmd, **kw):
    return subprocess.run(cmd, shell=True, check=True, capture_output=True, text=True, **kw)


def hyperfine(commands, runs=None, warmup=2):
    """Median seconds of each command (shell strings), measured by hyperfine in one run."""
    out = work / "hf.json"
    names = list(commands)
    cmd = ["hyperfine", "-N", "--style", "none", "--warmup", str(warmup), "--runs", str(runs or a.runs),
           "--export-json", str(out)]
    for n in names:
        cmd += ["--command-name", n, commands[n]]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    data = json.loads(out.read_text())["results"]
    return {n: {"median_s": r["median"], "min_s": r["min"], "max_s": r["max"]} for n, r in zip(names, data)}


def peak_rss_mib(command, runs=3):
    vals = []
    for _ in range(runs):
        r = subprocess.run(["/usr/bin/time", "-f", "%M"] + command.split(), capture_output=True, text=True)
        vals.append(int(r.stderr.strip().splitlines()[-1]) / 1024)
    return statistics.median(vals)


def q(path):
    return str(path)


def machine():
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    mem = next((int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
    versions = sh(f"{PY} -c 'import sklearn, flask, numpy, gunicorn; "
                  f"print(sklearn.__version__, flask.__version__, numpy.__version__, gunicorn.__version__)'").stdout.split()
    return {
        "cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem / 2**20, 1),
        "os": platform.platform(), "iris_trainer": sh(f"{BIN} --version").stdout.strip(),
        "python": sh(f"{PY} --version").stdout.strip(),
        "scikit_learn": versions[0], "flask": versions[1], "numpy": versions[2], "gunicorn": versions[3],
        "wrk": sh("wrk --version || true").stdout.splitlines()[0] if shutil.which("wrk") else "?",
        "hyperfine": sh("hyperfine --version").stdout.strip(),
    }


def section(title):
    print(f"\n== {title}", file=sys.stderr, flush=True)


# 1. Training, whole process -------------------------------------------------------------------
section("training: whole process")
ours_train = f"{BIN} --quiet --out {q(work / 'ours')}"
sk_train = f"{PY} {q(ROOT / 'bench' / 'sk_train.py')} --data {q(IRIS)} --out {q(work / 'sk.joblib')}"
t = hyperfine({"iris-trainer": ours_train, "scikit-learn": sk_train})
ours_meta = json.loads((work / "ours" / "model.json").read_text())
sk_out = json.loads(sh(sk_train).stdout)
results["training"] = {
    "iris-trainer": {**t["iris-trainer"], "peak_rss_mib": peak_rss_mib(ours_train),
                     "test_accuracy": ours_meta["metrics"]["test"]["accuracy"],
                     "epochs": ours_meta["metrics"]["epochs_run"]},
    "scikit-learn": {**t["scikit-learn"], "peak_rss_mib": peak_rss_mib(sk_train),
                     "test_accuracy": sk_out["test_accuracy"], "epochs": sk_out["epochs"]},
}

# 2. Training throughput, in process -------------------------------------------------------------
section("training throughput: Iris and 100,000 x 32 synthetic")
synth = work / "synthetic.csv"
sh(f"{PY} {q(ROOT / 'bench' / 'make_synthetic.py')} {q(synth)} --rows 100000 --features 32 --classes 10")


def ours_eps(data, extra, runs=3):
    vals = []
    for i in range(runs):
        out = work / f"tp{i}"
        sh(f"{BIN} --quiet --data {q(data)} {extra} --out {q(out)}")
        m = json.loads((out / "model.json").read_text())
        vals.append(m["metrics"]["epochs_run"] / m["duration_s"])
    return statistics.median(vals), m["metrics"]["test"]["accuracy"]


def sk_eps(data, extra, runs=3):
    vals, acc = [], 0
    for _ in range(runs):
        r = json.loads(sh(f"{PY} {q(ROOT / 'bench' / 'sk_train.py')} --data {q(data)} {extra} "
                          f"--out {q(work / 'tp.joblib')}").stdout)
        vals.append(r["epochs_per_s"])
        acc = r["test_accuracy"]
    return statistics.median(vals), acc


for name, data, ours_extra, sk_extra in [
    ("iris (120 train rows, full batch, 300 epochs)", IRIS, "", ""),
    ("synthetic 100,000 x 32, 10 classes (batch 256, 3 epochs)", synth,
     "--epochs 3 --batch-size 256", "--epochs 3 --batch-size 256"),
]:
    o, oa = ours_eps(data, ours_extra)
    s, sa = sk_eps(data, sk_extra)
    results["throughput"][name] = {"iris-trainer": {"epochs_per_s": o, "test_accuracy": oa},
                                   "scikit-learn": {"epochs_per_s": s, "test_accuracy": sa}}

# 3. Single prediction, whole process ------------------------------------------------------------
section("single prediction: whole process")
model_dir, joblib_file = work / "ours", work / "sk.joblib"
results["predict"] = hyperfine({
    "iris-trainer": f"{BIN} predict --model {q(model_dir)} {' '.join(FLOWER)}",
    "scikit-learn": f"{PY} {q(ROOT / 'bench' / 'sk_predict.py')} --model {q(joblib_file)} {' '.join(FLOWER)}",
})

# 4. Batch prediction ---------------------------------------------------------------------------
section("batch prediction: 1 and 100,000 rows")
iris_rows = [l.rsplit(",", 1)[0] for l in IRIS.read_text().splitlines()[1:]]
for n in (1, 100_000):
    f = work / f"rows{n}.csv"
    f.write_text("".join(iris_rows[i % len(iris_rows)] + "\n" for i in range(n)))
    t = hyperfine({
        "iris-trainer": f"{BIN} predict --model {q(model_dir)} --input {q(f)} --format csv --quiet",
        "scikit-learn": f"{PY} {q(ROOT / 'bench' / 'sk_predict.py')} --model {q(joblib_file)} --input {q(f)}",
    }, runs=5, warmup=1)
    results["batch"][str(n)] = {k: {**v, "rows_per_s": n / v["median_s"]} for k, v in t.items()}

# 5. HTTP service ---------------------------------------------------------------------------------
section("HTTP service: wrk at 1, 8 and 64 connections (loopback)")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port, limit=30):
    end = time.time() + limit
    while time.time() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server on {port} did not start")


def wrk(port, conns):
    url = f"http://127.0.0.1:{port}/prediction?slength=5.1&swidth=3.5&plength=1.4&pwidth=0.2"
    r = sh(f"wrk -t{min(conns, 2)} -c{conns} -d{a.http_seconds}s --latency '{url}'")
    text = r.stdout

    def dur(s):
        v, unit = re.match(r"([\d.]+)(us|ms|s|m)", s).groups()
        return float(v) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    p50 = dur(re.search(r"50%\s+(\S+)", text).group(1))
    p99 = dur(re.search(r"99%\s+(\S+)", text).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    sock = re.search(r"Socket errors: (.*)", text)
    return {"requests_per_s": rps, "p50_ms": p50, "p99_ms": p99,
            "non_2xx": int(errors.group(1)) if errors else 0, "socket_errors": sock.group(1) if sock else ""}


env_base = {**os.environ, "MODEL_PATH": str(joblib_file)}
servers = {
    "iris-trainer serve": (lambda port: [BIN, "serve", "--quiet", "--model", str(model_dir), "--addr",
                                         f"127.0.0.1:{port}"], {}),
    "flask run (load per request)": (lambda port: [PY, "-m", "flask", "--app", "flask_app", "run", "--port",
                                                   str(port)], {"LOAD_ONCE": "0"}),
    "flask run (load once)": (lambda port: [PY, "-m", "flask", "--app", "flask_app", "run", "--port", str(port)],
                              {"LOAD_ONCE": "1"}),
    "gunicorn -w 2 (load per request)": (lambda port: [PY, "-m", "gunicorn", "-w", "2", "-b",
                                                       f"127.0.0.1:{port}", "flask_app:app"], {"LOAD_ONCE": "0"}),
    "gunicorn -w 2 (load once)": (lambda port: [PY, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}",
                                                "flask_app:app"], {"LOAD_ONCE": "1"}),
}
for name, (argv, env) in servers.items():
    port = free_port()
    proc = subprocess.Popen(argv(port), cwd=ROOT / "bench", env={**env_base, **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_ready(port)
        time.sleep(0.5)
        results["http"][name] = {str(c): wrk(port, c) for c in (1, 8, 64)}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)

# 6-7. Images ---------------------------------------------------------------------------------------
engine = a.engine or ("docker" if shutil.which("docker") and subprocess.run(
    "docker info", shell=True, capture_output=True).returncode == 0 else "podman")
engine_cmd = [engine] + (["--runtime", "runc"] if engine == "podman" else [])
for tag in ("iris-trainer:0.1.0", "iris-trainer:0.1.0-gpu"):
    r = subprocess.run(engine_cmd + ["image", "inspect", "--format", "{{.Size}}", tag], capture_output=True,
                       text=True)
    results["images"][tag] = int(r.stdout.strip()) / 1e6 if r.returncode == 0 else None
if a.images:
    section("CPU image: cold and code-change builds")
    opts = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024", "--pull=never"] if engine == "podman" else []
    build = engine_cmd + ["build"] + opts + ["-t", "iris-trainer:bench", "."]
    cold = engine_cmd + ["build", "--no-cache"] + opts + ["-t", "iris-trainer:bench", "."]
    start = time.time()
    subprocess.run(cold, cwd=ROOT, check=True, capture_output=True)
    results["images"]["cold_build_s"] = time.time() - start
    main_rs = ROOT / "src" / "main.rs"
    original = main_rs.read_text()
    try:
        main_rs.write_text(original + "\n// benchmark: a code change\n")
        start = time.time()
        subprocess.run(build, cwd=ROOT, check=True, capture_output=True)
        results["images"]["code_change_build_s"] = time.time() - start
    finally:
        main_rs.write_text(original)
    subprocess.run(engine_cmd + ["rmi", "-f", "iris-trainer:bench"], capture_output=True)

results["machine"] = machine()
out_dir = ROOT / "bench" / "results"
out_dir.mkdir(exist_ok=True)
(out_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")


# Table -------------------------------------------------------------------------------------------
def ms(s):
    return f"{s * 1e3:.1f} ms" if s < 10 else f"{s:.1f} s"


lines = []
m = results["machine"]
lines += [f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB; {m['os']}",
          f"Versions: {m['iris_trainer']}; {m['python']}, scikit-learn {m['scikit_learn']}, numpy {m['numpy']}, "
          f"Flask {m['flask']}, gunicorn {m['gunicorn']}; {m['wrk']}; {m['hyperfine']}", ""]
tr = results["training"]
o, s = tr["iris-trainer"], tr["scikit-learn"]
lines += ["| training, whole process (Iris, 300 epochs) | iris-trainer | scikit-learn | ratio |", "|---|---|---|---|",
          f"| wall time (median of {a.runs}) | {ms(o['median_s'])} | {ms(s['median_s'])} | "
          f"{s['median_s'] / o['median_s']:.0f}x faster |",
          f"| peak RSS | {o['peak_rss_mib']:.1f} MiB | {s['peak_rss_mib']:.1f} MiB | "
          f"{s['peak_rss_mib'] / o['peak_rss_mib']:.0f}x less |",
          f"| test accuracy | {o['test_accuracy']:.4f} | {s['test_accuracy']:.4f} | |", ""]
lines += ["| training throughput, in process | iris-trainer | scikit-learn | ratio |", "|---|---|---|---|"]
for name, v in results["throughput"].items():
    o, s = v["iris-trainer"], v["scikit-learn"]
    lines.append(f"| {name} | {o['epochs_per_s']:,.1f} epochs/s (acc {o['test_accuracy']:.3f}) | "
                 f"{s['epochs_per_s']:,.1f} epochs/s (acc {s['test_accuracy']:.3f}) | "
                 f"{o['epochs_per_s'] / s['epochs_per_s']:.1f}x |")
pr = results["predict"]
lines += ["", "| prediction, whole process | iris-trainer | Python script (joblib) | ratio |", "|---|---|---|---|",
          f"| one flower (median of {a.runs}) | {ms(pr['iris-trainer']['median_s'])} | "
          f"{ms(pr['scikit-learn']['median_s'])} | {pr['scikit-learn']['median_s'] / pr['iris-trainer']['median_s']:.0f}x faster |"]
for n, v in results["batch"].items():
    o, s = v["iris-trainer"], v["scikit-learn"]
    lines.append(f"| {int(n):,} row{'s' if int(n) != 1 else ''} from a CSV | {ms(o['median_s'])} ({o['rows_per_s']:,.0f} rows/s) | "
                 f"{ms(s['median_s'])} ({s['rows_per_s']:,.0f} rows/s) | {s['median_s'] / o['median_s']:.1f}x faster |")
lines += ["", f"| HTTP `GET /prediction` ({a.http_seconds} s per cell, loopback) | 1 conn: req/s, p50, p99 | "
          "8 conns | 64 conns |", "|---|---|---|---|"]
for name, v in results["http"].items():
    cells = [f"{c['requests_per_s']:,.0f}, {c['p50_ms']:.2f} ms, {c['p99_ms']:.2f} ms"
             + (f" ({c['non_2xx']} non-2xx)" if c["non_2xx"] else "") for c in v.values()]
    lines.append(f"| {name} | " + " | ".join(cells) + " |")
ours64 = results["http"]["iris-trainer serve"]["64"]["requests_per_s"]
flask64 = results["http"]["flask run (load per request)"]["64"]["requests_per_s"]
best_py = max(v["64"]["requests_per_s"] for k, v in results["http"].items() if k != "iris-trainer serve")
lines += ["", f"At 64 connections: {ours64 / flask64:.0f}x the workshop's Flask app, "
              f"{ours64 / best_py:.1f}x the fastest Python variant."]
im = results["images"]
lines += ["", "| image | size |", "|---|---|"]
for tag in ("iris-trainer:0.1.0", "iris-trainer:0.1.0-gpu"):
    lines.append(f"| `{tag}` | " + (f"{im[tag]:.1f} MB" if im.get(tag) else "not built") + " |")
lines.append("| workshop image (python + numpy, scipy, scikit-learn, pandas; documented) | 1,210 MB |")
if "cold_build_s" in im:
    lines += ["", f"CPU image build: cold {im['cold_build_s']:.0f} s, after a code change "
                  f"{im['code_change_build_s']:.0f} s."]
table = "\n".join(lines) + "\n"
(out_dir / "results.md").write_text(table)
print(table)
shutil.rmtree(work, ignore_errors=True)
