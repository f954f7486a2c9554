#!/usr/bin/env python3
"""Data at scale: iris-trainer against a PyTorch script on synthetic tables, side by side.

Run through scripts/bench.sh (which builds the release binary and installs torch, pandas and
numpy into its virtualenv), or directly:

  python bench/scale.py --python target/bench-venv/bin/python [--rows 10000,100000,1000000,5000000]

Measures, every figure the best of --runs runs (whole-process wall time; peak RSS of the process
and its descendants from wait4, as GNU time reports it; in-process times from each program's own
report):
  1. 1,000,000 x 32 (10 classes), one epoch at batch 256: iris-trainer, the PyTorch script
     (bench/torch_train.py: pandas.read_csv, the same MLP, Adam, batch, threads), and
     pandas.read_csv alone; plus `iris-trainer evaluate` on the same file.
  2. 100,000 x 32, 10 epochs at batch 256: epochs per second in process, same span for both
     (split, scaling, tensors, epochs, final scores), same threads.
  3. Cost growth: one epoch at batch 256 on each of --rows, both programs.
  4. With --gpu-bin (an iris-trainer built with --features wgpu): sections 1 and 2 again on the GPU,
     iris-trainer (wgpu) against the PyTorch script with --device cuda.
  5. With --stream-rows N: `evaluate` and `predict --input` with the 1,000,000-row model on the
     1,000,000-row table and on an N-row one (peak RSS should not grow with the file).
Tables are written once by bench/make_synthetic.py into --data-dir and reused.
Writes bench/results/scale.{json,md} and prints the tables.
"""
import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

p = argparse.ArgumentParser()
p.add_argument("--bin", default=str(ROOT / "target" / "release" / "iris-trainer"))
p.add_argument("--python", default=sys.executable, help="python with torch, pandas and numpy")
p.add_argument("--rows", default="10000,100000,1000000,5000000", help="cost-growth table sizes")
p.add_argument("--runs", type=int, default=3, help="runs per measurement (the best is kept)")
p.add_argument("--threads", type=int, default=2, help="threads for PyTorch (iris-trainer's are its own)")
p.add_argument("--loop-epochs", type=int, default=10, help="epochs of the 100,000-row loop comparison")
p.add_argument("--data-dir", default=str(ROOT / "target" / "bench-data"))
p.add_argument("--only", default="", help="comma-separated subset of: million,loop,growth,gpu,stream")
p.add_argument("--gpu-bin", default="", help="an iris-trainer built with --features wgpu (adds the GPU section)")
p.add_argument("--out-dir", default=str(ROOT / "bench" / "results"), help="where scale.{json,md} go")
p.add_argument("--render", default="", help="only write the tables of an earlier run's scale.json")
p.add_argument("--stream-rows", type=int, default=0, help="rows of the table evaluate/predict stream")
a = p.parse_args()

BIN = os.path.abspath(a.bin)
PY = a.python if os.sep in a.python else (shutil.which(a.python) or a.python)
PY = os.path.abspath(PY)
data_dir = Path(a.data_dir)
data_dir.mkdir(parents=True, exist_ok=True)
work = Path(tempfile.mkdtemp(prefix="iris-scale."))
only = set(filter(None, a.only.split(",")))
results = {"machine": {}, "million": {}, "loop": {}, "growth": {}, "gpu": {}, "stream": {}}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def table(rows):
    path = data_dir / f"synthetic-{rows}x32.csv"
    if not path.exists():
        log(f"writing {path}")
        tmp = path.with_suffix(".tmp")
        subprocess.run([PY, str(ROOT / "bench" / "make_synthetic.py"), str(tmp), "--rows", str(rows),
                        "--features", "32", "--classes", "10"], check=True)
        tmp.rename(path)
    return path


def timed(argv):
    """(wall seconds, peak RSS MiB, stdout, exit code, stderr) of one run; the peak RSS is the
    largest of the process and its descendants (wait4's rusage, what GNU time reports)."""
    out, err = work / "stdout.txt", work / "stderr.txt"
    with open(out, "w") as o, open(err, "w") as e:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=o, stderr=e)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_maxrss / 1024, out.read_text(), proc.returncode, err.read_text()


def best(argv, runs=None, parse=None):
    """The run with the lowest wall time; `parse(stdout, run)` adds in-process figures."""
    runs = runs or a.runs
    out = []
    for i in range(runs):
        wall, rss, stdout, code, stderr = timed([s.replace("{i}", str(i)) for s in argv])
        if code != 0:
            return {"error": (stderr.strip().splitlines() or [f"exit {code}"])[-1], "exit_code": code}
        entry = {"wall_s": wall, "peak_rss_mib": rss}
        if parse:
            entry.update(parse(stdout, i))
        out.append(entry)
    pick = min(out, key=lambda e: e["wall_s"])
    return {**pick, "runs": len(out), "peak_rss_mib": min(e["peak_rss_mib"] for e in out),
            "all_wall_s": [e["wall_s"] for e in out]}


def ours(data, epochs, runs=None, binary=None):
    def parse(_stdout, i):
        m = json.loads((work / f"ours{i}" / "model.json").read_text())
        return {"fit_s": m["duration_s"], "epochs": m["metrics"]["epochs_run"],
                "epochs_per_s": m["metrics"]["epochs_run"] / m["duration_s"],
                "test_accuracy": m["metrics"]["test"]["accuracy"]}
    return best([binary or BIN, "--quiet", "--data", str(data), "--epochs", str(epochs), "--batch-size", "256",
                 "--out", str(work / "ours{i}")], runs, parse)


def torch(data, epochs, runs=None, device="cpu"):
    def parse(stdout, _i):
        r = json.loads(stdout.strip().splitlines()[-1])
        return {"fit_s": r["fit_s"], "loop_s": r["loop_s"], "read_s": r["read_s"], "import_s": r["import_s"],
                "epochs": r["epochs"], "epochs_per_s": r["fit_epochs_per_s"],
                "test_accuracy": r["test_accuracy"], "torch": r["torch"], "threads": r["threads"]}
    return best([PY, str(ROOT / "bench" / "torch_train.py"), "--data", str(data), "--epochs", str(epochs),
                 "--batch-size", "256", "--threads", str(a.threads), "--device", device], runs, parse)


def want(section):
    if a.render:
        return False
    return not only or section in only


def save():
    """Writes what is measured so far (a run cut short keeps its finished sections)."""
    if a.render:
        return
    Path(a.out_dir).mkdir(parents=True, exist_ok=True)
    (Path(a.out_dir) / "scale.json").write_text(json.dumps(results, indent=2) + "\n")


def sh(cmd):
    return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()


if not a.render:
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    results["machine"] = {
        "cpu": cpu, "cores": os.cpu_count(), "cores_used": len(os.sched_getaffinity(0)), "os": platform.platform(),
        "iris_trainer": sh(f"{BIN} --version"),
        "commit": os.environ.get("IRIS_COMMIT") or (sh(f"git -C {ROOT} rev-parse --short HEAD") + (" (modified)" if sh(f"git -C {ROOT} status --porcelain --untracked-files=no") else "")),
        "python": sh(f"{PY} --version"),
        "versions": sh(f"{PY} -c 'import torch, pandas, numpy; print(torch.__version__, pandas.__version__, numpy.__version__)'"),
        "runs": a.runs, "threads": a.threads,
    }

if want("gpu") and a.gpu_bin:
    gpu_bin = os.path.abspath(a.gpu_bin)
    big, mid = table(1_000_000), table(100_000)
    log("GPU: iris-trainer (wgpu) against PyTorch (cuda)")
    results["gpu"] = {
        "million": {"iris-trainer": ours(big, 1, binary=gpu_bin), "pytorch": torch(big, 1, device="cuda")},
        "loop": {"epochs": a.loop_epochs, "iris-trainer": ours(mid, a.loop_epochs, binary=gpu_bin),
                 "pytorch": torch(mid, a.loop_epochs, device="cuda")},
    }
    m0 = work / "ours0" / "model.json"
    if m0.exists():
        results["gpu"]["device"] = json.loads(m0.read_text()).get("device")
    results["gpu"]["nvidia_smi"] = subprocess.run(
        "nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader", shell=True,
        capture_output=True, text=True).stdout.strip()


save()

if want("million"):
    big = table(1_000_000)
    log("1,000,000 x 32, one epoch: iris-trainer, PyTorch, pandas.read_csv, evaluate")
    results["million"] = {
        "file_mb": big.stat().st_size / 1e6,
        "iris-trainer": ours(big, 1),
        "pytorch": torch(big, 1),
        "pandas.read_csv": best([PY, "-c", f"import pandas; pandas.read_csv({str(big)!r})"]),
    }
    model = work / "ours0"
    if (model / "model.json").exists():
        results["million"]["evaluate"] = best([BIN, "evaluate", "--model", str(model), "--data", str(big)])

save()

if want("loop"):
    mid = table(100_000)
    log(f"100,000 x 32, {a.loop_epochs} epochs: training loop in process")
    results["loop"] = {"epochs": a.loop_epochs, "iris-trainer": ours(mid, a.loop_epochs),
                       "pytorch": torch(mid, a.loop_epochs)}

save()

if want("growth"):
    for rows in [int(r) for r in a.rows.split(",") if r]:
        data = table(rows)
        log(f"cost growth: {rows:,} rows, one epoch")
        results["growth"][str(rows)] = {"file_mb": data.stat().st_size / 1e6,
                                        "iris-trainer": ours(data, 1), "pytorch": torch(data, 1)}
        save()


save()

if want("stream") and a.stream_rows:
    big, huge = table(1_000_000), table(a.stream_rows)
    model = work / "stream-model"
    if not (model / "model.json").exists():
        subprocess.run([BIN, "--quiet", "--data", str(big), "--epochs", "1", "--batch-size", "256",
                        "--out", str(model)], check=True)
    log(f"streaming: evaluate and predict on 1,000,000 and {a.stream_rows:,} rows")
    for rows, data in [(1_000_000, big), (a.stream_rows, huge)]:
        results["stream"][str(rows)] = {
            "file_mb": data.stat().st_size / 1e6,
            "evaluate": best([BIN, "evaluate", "--model", str(model), "--data", str(data)], 1),
            "predict": best(["sh", "-c", f"{BIN} predict --model {model} --input {data} > /dev/null"], 1),
        }

save()


out_dir = Path(a.out_dir)
out_dir.mkdir(parents=True, exist_ok=True)
if a.render:
    results = json.loads(Path(a.render).read_text())
save()


# Tables ------------------------------------------------------------------------------------------
def secs(e, key="wall_s"):
    if "error" in e:
        return "failed: " + e["error"]
    return f"{e[key]:.2f} s"


def mib(e):
    return "" if "error" in e else (f"{e['peak_rss_mib'] / 1024:.2f} GiB" if e["peak_rss_mib"] >= 1024
                                    else f"{e['peak_rss_mib']:.0f} MiB")


def ratio(o, t, key, invert=False):
    if "error" in o or "error" in t or not o.get(key) or not t.get(key):
        return ""
    r = t[key] / o[key] if not invert else o[key] / t[key]
    return f"{r:.2f}x"


m = results["machine"]
v = m["versions"].split()
lines = [f"Machine: {m['cpu']}, {m['cores']} cores ({m.get('cores_used', m['cores'])} used); {m['os']}",
         f"Versions: {m['iris_trainer']} (commit {m['commit']}); {m['python']}, torch {v[0] if v else '?'} "
         f"(CPU, {m['threads']} threads), pandas {v[1] if len(v) > 1 else '?'}, numpy {v[2] if len(v) > 2 else '?'}; "
         f"best of {m['runs']} runs", ""]
if results["million"]:
    r = results["million"]
    o, t, pd_ = r["iris-trainer"], r["pytorch"], r["pandas.read_csv"]
    lines += [f"1,000,000 x 32 ({r['file_mb']:.0f} MB CSV, 10 classes), one epoch at batch 256:", "",
              "| | whole process | peak RSS | training (in process) |", "|---|---|---|---|",
              f"| iris-trainer | {secs(o)} | {mib(o)} | {secs(o, 'fit_s') if 'fit_s' in o else ''} |",
              f"| PyTorch script (pandas.read_csv; torch, {m['threads']} threads) | {secs(t)} | {mib(t)} | "
              f"{secs(t, 'fit_s') if 'fit_s' in t else ''} |",
              f"| `pandas.read_csv` alone | {secs(pd_)} | {mib(pd_)} | |"]
    if "evaluate" in r:
        lines.append(f"| `iris-trainer evaluate` on the file | {secs(r['evaluate'])} | {mib(r['evaluate'])} | |")
    lines.append("")
    if "error" not in o and "error" not in t:
        lines += [f"iris-trainer / PyTorch: wall time {o['wall_s'] / t['wall_s']:.2f}x, "
                  f"peak RSS {o['peak_rss_mib'] / t['peak_rss_mib']:.2f}x", ""]
if results["loop"]:
    r = results["loop"]
    o, t = r["iris-trainer"], r["pytorch"]
    lines += [f"100,000 x 32, {r['epochs']} epochs at batch 256, in process (split, scaling, epochs, final scores):", "",
              "| | epochs/s | test accuracy |", "|---|---|---|",
              f"| iris-trainer | {o.get('epochs_per_s', 0):.2f} | {o.get('test_accuracy', 0):.4f} |",
              f"| PyTorch | {t.get('epochs_per_s', 0):.2f} | {t.get('test_accuracy', 0):.4f} |",
              "", f"iris-trainer: {ratio(o, t, 'epochs_per_s', invert=True)} PyTorch's epochs/s", ""]
if results["growth"]:
    lines += ["Cost growth, one epoch at batch 256 (whole process; training in process):", "",
              "| rows | CSV | iris-trainer: wall, peak RSS, training | PyTorch: wall, peak RSS, training |",
              "|---|---|---|---|"]
    for rows, r in results["growth"].items():
        o, t = r["iris-trainer"], r["pytorch"]
        cell = lambda e: (secs(e) if "error" in e else f"{secs(e)}, {mib(e)}, {secs(e, 'fit_s')}")
        lines.append(f"| {int(rows):,} | {r['file_mb']:.0f} MB | {cell(o)} | {cell(t)} |")
    lines.append("")
if results["stream"]:
    lines += ["Streaming with the 1,000,000-row model (whole process, peak RSS):", "",
              "| rows | CSV | evaluate | predict --input (to /dev/null) |", "|---|---|---|---|"]
    for rows, r in results["stream"].items():
        cell = lambda e: (secs(e) if "error" in e else f"{secs(e)}, {mib(e)}")
        lines.append(f"| {int(rows):,} | {r['file_mb']:.0f} MB | {cell(r['evaluate'])} | {cell(r['predict'])} |")
    lines.append("")
if results["gpu"]:
    g = results["gpu"]
    dev = g.get("device") or {}
    lines += [f"GPU ({g.get('nvidia_smi', '?')}; iris-trainer on {dev.get('name', '?')} "
              f"{dev.get('driver') or ''}; PyTorch on CUDA):", "",
              "| | 1,000,000 x 32, one epoch: whole process | training (in process) | "
              f"100,000 x 32, {g['loop']['epochs']} epochs: epochs/s in process | test accuracy |",
              "|---|---|---|---|---|"]
    for who in ["iris-trainer", "pytorch"]:
        o, l_ = g["million"][who], g["loop"][who]
        name = "iris-trainer (wgpu)" if who == "iris-trainer" else "PyTorch (cuda)"
        lines.append(f"| {name} | {secs(o)} | {secs(o, 'fit_s') if 'fit_s' in o else ''} | "
                     f"{l_.get('epochs_per_s', 0):.2f} | {l_.get('test_accuracy', 0):.4f} |")
    lines.append("")
text = "\n".join(lines) + "\n"
(out_dir / "scale.md").write_text(text)
print(text)
