"""What the model-file checks share (safetensors_check.py, onnx_check.py): running
iris-trainer, counting checks, and running one of the README's Python snippets beside
`iris-trainer predict`.

`BIN` is set by the importing script from its command line.
"""

import json
import os
import re
import subprocess
import sys
import tempfile
import traceback

BIN = None
passed = failed = 0


def check(name, fn):
    """Runs `fn`, printing `ok` with what it returns, or `FAIL` with its traceback."""
    global passed, failed
    try:
        detail = fn()
        passed += 1
        print(f"ok   {name}: {detail}")
    except Exception:  # noqa: BLE001 - every failure is reported, then counted
        failed += 1
        print(f"FAIL {name}")
        traceback.print_exc(file=sys.stdout)


def run(*args):
    """iris-trainer's standard output; an exit code other than 0 raises."""
    out = subprocess.run([BIN, *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"iris-trainer {' '.join(args)} exited {out.returncode}: {out.stderr}")
    return out.stdout


def readme_snippet(readme, needle):
    """Runs the one README Python block containing `needle` as written, from a directory whose
    `artifacts` holds the default Iris model; returns what it printed and `predict`'s answer
    for the flower the snippets use (6.0, 2.7, 5.1, 1.6)."""
    with open(readme) as f:
        blocks = re.findall(r"```python\n(.*?)```", f.read(), re.S)
    snippet = [b for b in blocks if needle in b]
    assert len(snippet) == 1, f"{len(snippet)} README Python blocks contain {needle}"
    with tempfile.TemporaryDirectory() as tmp:
        run("train", "--quiet", "--out", os.path.join(tmp, "artifacts"))
        printed = subprocess.run([sys.executable, "-c", snippet[0]], cwd=tmp,
                                 capture_output=True, text=True, check=True).stdout
        answer = json.loads(run("predict", "--quiet", "--model", os.path.join(tmp, "artifacts"),
                                "--format", "json", "6.0", "2.7", "5.1", "1.6"))["predictions"][0]
    return printed, answer


def finish():
    """Prints the count and exits 1 if any check failed."""
    print(f"interop: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
