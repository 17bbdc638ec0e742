"""Hostile inputs at the CLI: MLmodel files and model directories that used to crash,
hang or exhaust memory get exit 1 and a one-line message naming the problem, quickly."""

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def pyfunc_binary():
    if os.environ.get("PYFUNC_BINARY"):
        return os.environ["PYFUNC_BINARY"]
    for p in (ROOT / "build/cpp/pyfunc", Path(sys.executable).parent / "pyfunc"):
        if p.exists():
            return str(p)
    pytest.skip("no pyfunc binary (build/cpp/pyfunc or .venv/bin/pyfunc)")


def run(*args, timeout=60):
    start = time.monotonic()
    proc = subprocess.run([pyfunc_binary(), *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, PYFUNC_PYTHON=sys.executable), errors="replace")
    return proc, time.monotonic() - start


def model_dir(tmp_path, text, name="m"):
    d = tmp_path / name
    d.mkdir()
    (d / "MLmodel").write_bytes(text if isinstance(text, bytes) else text.encode())
    return d


HEADER = "flavors:\n  python_function:\n    loader_module: my_loader\n"


def alias_bomb(levels=9):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels + 1):
        lines.append("a%d: &a%d [%s]" % (i, i, ", ".join(["*a%d" % (i - 1)] * 9)))
    return HEADER + "\n".join(lines) + "\n"


@pytest.mark.parametrize("command", [["info"], ["info", "--json"], ["validate"]])
def test_alias_bomb_is_refused_in_seconds(tmp_path, command):
    # 9 levels of nested aliases made info, validate and serve grow until std::bad_alloc.
    d = model_dir(tmp_path, alias_bomb())
    proc, seconds = run(*command, d)
    assert seconds < 10
    assert proc.returncode == 1, proc.stderr
    assert "alias expansion exceeds" in proc.stdout + proc.stderr
    assert str(d / "MLmodel") + ":" in proc.stdout + proc.stderr  # MLmodel:line:col


def test_alias_bomb_is_refused_by_serve(tmp_path):
    d = model_dir(tmp_path, alias_bomb())
    proc, seconds = run("serve", "-m", d, "-p", "0", "--env-manager", "local", timeout=30)
    assert proc.returncode == 1 and seconds < 10
    assert "alias expansion exceeds" in proc.stderr


def test_modest_aliases_read_as_pyyaml_reads_them(tmp_path):
    text = HEADER + "metadata:\n  base: &b {x: 1, y: [1, 2]}\n  copies: [*b, *b]\n"
    proc, _ = run("info", "--json", model_dir(tmp_path, text))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["metadata"] == yaml.safe_load(text)["metadata"]


def test_invalid_utf8_is_refused_as_mlflow_refuses_it(tmp_path):
    # Bytes that are not UTF-8 made the JSON writer throw (an abort) in `info --json`.
    text = b"flavors:\n \xe0\x8f\x86:\n  e:"
    d = model_dir(tmp_path, HEADER.encode() + b"metadata:\n  \xe0\x8f\x86: e\n")
    for command in (["info"], ["info", "--json"], ["validate"]):
        proc, _ = run(*command, d)
        assert proc.returncode == 1, proc.stderr
        assert "MLmodel:5:3: not valid UTF-8 (byte 0xE0)" in proc.stdout + proc.stderr
    with pytest.raises(yaml.YAMLError):  # MLflow's reader: PyYAML on the file's text
        yaml.safe_load(text)
    with pytest.raises(UnicodeDecodeError):
        text.decode("utf-8")


@pytest.mark.parametrize(
    "value, message",
    [
        ("!!int :f", "cannot construct an int from ':f'"),  # was an uncaught std::invalid_argument
        ("1" * 310 + ":00", "does not fit in 64 bits"),  # was std::out_of_range
        ("1111111111111111119:9", "integer 1111111111111111119:9 does not fit in 64 bits"),  # was UB
        ("7" * 50000, "does not fit in 64 bits"),  # was a stack overflow in std::regex (exit 139)
    ],
)
def test_numbers_that_crashed_are_errors(tmp_path, value, message):
    d = model_dir(tmp_path, HEADER + "metadata:\n  v: " + value + "\n")
    proc, seconds = run("info", d)
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-500:])
    assert message in proc.stderr
    assert seconds < 10


def test_what_pyfunc_reads_matches_pyyaml_on_tricky_scalars(tmp_path):
    text = HEADER + (
        "metadata:\n"
        "  a: \"\\N\\_\\L\\P\\x85\\ue000\\U0001F600\"\n"
        "  b: 153722867280912930:7\n"
        "  c: 1:30.5\n"
        "  d: " + "7" * 400 + ".5\n"
        "  e: 0x_1F\n"
        "  f: 2001-12-14t21:59:43.10-05:00x\n"
        "  g: [1_0, 0b1_0, 017, +.inf, .NaN, ~, Off]\n")
    proc, _ = run("info", "--json", model_dir(tmp_path, text))
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)["metadata"]
    want = yaml.safe_load(text)["metadata"]
    # Infinity and NaN are written as Python's json.dumps writes them, which json.loads reads.
    assert math.isnan(got["g"][4]) and math.isnan(want["g"][4])
    got["g"][4] = want["g"][4] = "nan"
    assert got == want


def test_a_symlink_out_of_the_model_is_refused_by_predict(tmp_path):
    # `validate` refused a data file linked out of the model; `predict` and `serve` followed it.
    (tmp_path / "secret.txt").write_text("not the model's")
    d = model_dir(tmp_path, HEADER + "    data: data/model.pkl\n")
    (d / "data").mkdir()
    (d / "data" / "model.pkl").symlink_to(tmp_path / "secret.txt")
    (tmp_path / "in.csv").write_text("a\n1\n")
    proc, _ = run("predict", "-m", d, "-i", tmp_path / "in.csv", "--env-manager", "local")
    assert proc.returncode == 1
    assert "symbolic link resolves outside the model directory" in proc.stderr
    proc, _ = run("serve", "-m", d, "-p", "0", "--env-manager", "local", timeout=30)
    assert proc.returncode == 1
    assert "symbolic link resolves outside the model directory" in proc.stderr
    proc, _ = run("validate", d)
    assert proc.returncode == 1
    assert "resolves outside the model directory" in proc.stdout + proc.stderr
