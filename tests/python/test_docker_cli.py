"""`pyfunc generate-dockerfile` and `build-docker` without building an image: the build
context of a model logged to a run, and the errors for bad arguments, a missing model,
a used directory, something that is not a wheel and a machine without a builder. Images
are built and run in tests/images (scripts/test-images.sh)."""
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytest_plugins = ["conftest_tracking"]

PYFUNC = str(Path(sys.executable).parent / "pyfunc")


def run(*args, env=None):
    return subprocess.run([PYFUNC, *args], capture_output=True, text=True, env=env, timeout=120)


@pytest.fixture
def wheel(tmp_path):
    """A wheel with no native code (so the context needs no Debian packages)."""
    path = tmp_path / "pyfunc-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("pyfunc/__init__.py", "")
    return path


def test_the_context_of_a_model_logged_to_a_run(tracking_env, loader_kwargs, wheel):
    import pyfunc

    with pyfunc.start_run() as active:
        pyfunc.log_model("model", **loader_kwargs)
    ctx = tracking_env / "ctx"
    proc = run("generate-dockerfile", "-m", f"runs:/{active.info.run_id}/model", "-d", str(ctx),
               "--pyfunc-wheel", str(wheel))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(ctx / "Dockerfile")
    assert sorted(p.name for p in ctx.iterdir()) == ["Dockerfile", "model", wheel.name]
    assert (ctx / "model" / "MLmodel").is_file() and (ctx / "model" / "data" / "weights.txt").read_text() == "2"
    dockerfile = (ctx / "Dockerfile").read_text()
    assert [l for l in dockerfile.splitlines() if l.startswith("FROM")] == ["FROM python:3.11-slim-bookworm"]
    assert "apt-get" not in dockerfile  # no native code, no libraries
    assert f"runs:/{active.info.run_id}/model" in dockerfile
    assert "COPY --chown=1000:0 model /opt/ml/model" in dockerfile
    assert dockerfile.endswith('ENTRYPOINT ["pyfunc"]\nCMD ["serve"]\n')


def test_a_generic_context_has_no_model_and_takes_another_base(tmp_path, wheel):
    proc = run("generate-dockerfile", "--no-model", "-d", str(tmp_path / "ctx"), "--pyfunc-wheel", str(wheel),
               "--base-image", "registry.example/python:3.11-bookworm")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "ctx").iterdir()) == ["Dockerfile", wheel.name]
    dockerfile = (tmp_path / "ctx" / "Dockerfile").read_text()
    assert "FROM registry.example/python:3.11-bookworm\n" in dockerfile and "prepare-env" not in dockerfile


@pytest.mark.parametrize("args,message", [
    (["-m", "/no/such/model"], "/no/such/model"),
    ([], "no model URI given"),
    (["--no-model", "-m", "."], "takes no model URI"),
])
def test_bad_models_are_named_and_leave_no_context(tmp_path, wheel, args, message):
    ctx = tmp_path / "ctx"
    proc = run("generate-dockerfile", *args, "-d", str(ctx), "--pyfunc-wheel", str(wheel))
    assert proc.returncode == 1
    assert proc.stderr.startswith("pyfunc: error: ") and message in proc.stderr, proc.stderr
    assert not ctx.exists()


def test_a_used_directory_is_refused_and_kept(tmp_path, wheel):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "notes.txt").write_text("mine")
    proc = run("generate-dockerfile", "--no-model", "-d", str(ctx), "--pyfunc-wheel", str(wheel))
    assert proc.returncode == 1 and "exists and is not empty" in proc.stderr, proc.stderr
    assert [p.name for p in ctx.iterdir()] == ["notes.txt"]


def test_a_file_that_is_not_a_wheel_is_named_and_the_context_removed(tmp_path):
    fake = tmp_path / "pyfunc.whl"
    fake.write_text("not a zip")
    ctx = tmp_path / "ctx"
    proc = run("generate-dockerfile", "--no-model", "-d", str(ctx), "--pyfunc-wheel", str(fake))
    assert proc.returncode == 1 and "not a wheel" in proc.stderr and str(fake) in proc.stderr, proc.stderr
    assert not ctx.exists()


def test_a_missing_wheel_is_a_usage_error():
    proc = run("generate-dockerfile", "--no-model", "--pyfunc-wheel", "/no/such.whl")
    assert proc.returncode == 2 and "/no/such.whl" in proc.stderr, proc.stderr


def test_no_builder_is_said_clearly(tmp_path, wheel):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"  # a client that reaches no engine, as on this machine
    docker.write_text("#!/bin/sh\necho 'Cannot connect to the Docker daemon' >&2\nexit 1\n")
    docker.chmod(0o755)
    env = dict(os.environ, PATH=str(bin_dir))
    proc = run("build-docker", "--no-model", "-n", "x", "--pyfunc-wheel", str(wheel), env=env)
    assert proc.returncode == 1
    assert "no image builder found: install docker (with a running engine), podman or buildah" in proc.stderr
    assert "`docker info` reaches no engine" in proc.stderr
    proc = run("build-docker", "--no-model", "-n", "x", "--builder", "podman", "--pyfunc-wheel", str(wheel), env=env)
    assert proc.returncode == 1 and "image builder 'podman' is not on PATH" in proc.stderr, proc.stderr
    proc = run("build-docker", "--no-model", "--builder", "kaniko")
    assert proc.returncode == 2 and "kaniko" in proc.stderr


def test_serve_as_pid_1_of_a_container_drains_on_sigterm(tracking_env, loader_kwargs):
    """In a container `pyfunc serve` is PID 1, which gets no signal it has no handler for;
    it takes SIGTERM with sigwait (blocked, so delivered) and drains. A PID namespace of
    its own (unshare) makes it PID 1 here."""
    import shutil
    import signal
    import socket
    import time
    import urllib.request

    import pyfunc

    if shutil.which("unshare") is None or subprocess.run(["unshare", "--pid", "--fork", "true"]).returncode != 0:
        pytest.skip("unshare --pid is not available here")
    path = tracking_env / "model"
    pyfunc.save_model(str(path), **loader_kwargs)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(["unshare", "--pid", "--fork", "--mount-proc", PYFUNC, "serve", "-m", str(path), "-p",
                             str(port), "--env-manager", "local"], stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYFUNC_PYTHON=sys.executable))
    try:
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                assert time.time() < deadline and proc.poll() is None, proc.stderr.read()
                time.sleep(0.05)
        out = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        server = int(out[0])
        status = Path(f"/proc/{server}/status").read_text()
        assert [line.split()[-1] for line in status.splitlines() if line.startswith("NSpid:")] == ["1"]
        os.kill(server, signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        assert "drained; exiting" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()


def usable_cores():
    """The CPU affinity capped by a cgroup v2 or v1 CPU quota, rounded up."""
    import math

    cores = len(os.sched_getaffinity(0))
    quota = None
    try:
        q, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if q != "max":
            quota = math.ceil(int(q) / int(period))
    except (OSError, ValueError):
        try:
            q = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
            period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
            if q > 0:
                quota = math.ceil(q / period)
        except (OSError, ValueError):
            pass
    return max(1, min(cores, quota or cores))


def test_zero_workers_is_one_per_usable_core_as_an_image_asks(tracking_env, loader_kwargs):
    """Images set MLFLOW_MODELS_WORKERS=0: a worker per core the container may use (its CPU
    limit, not the machine's core count), as MLflow's image starts one per core."""
    import signal
    import socket
    import time

    import pyfunc

    path = tracking_env / "model"
    pyfunc.save_model(str(path), **loader_kwargs)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PYFUNC_PYTHON=sys.executable, MLFLOW_MODELS_WORKERS="0")
    proc = subprocess.Popen([PYFUNC, "serve", "-m", str(path), "-p", str(port), "--env-manager", "local"],
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        lines = []
        deadline = time.time() + 120
        while time.time() < deadline:
            line = proc.stderr.readline()
            lines.append(line)
            if "ready (" in line or not line:
                break
        n = usable_cores()
        assert any(f"ready ({n} worker{'' if n == 1 else 's'}," in line for line in lines), lines
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def test_a_cpu_limit_of_the_processs_cgroup_caps_the_workers(tracking_env, loader_kwargs):
    """In a cgroup (v1 cpu controller) limited to 1 CPU, `-w 0` starts 1 worker on a
    machine with more cores."""
    import signal

    import pyfunc

    root = Path("/sys/fs/cgroup/cpu")
    if len(os.sched_getaffinity(0)) < 2 or not (root / "cpu.cfs_quota_us").exists() or not os.access(root, os.W_OK):
        pytest.skip("needs 2 cores and a writable cgroup v1 cpu hierarchy")
    group = root / f"pyfunc-test-{os.getpid()}"
    group.mkdir()
    try:
        (group / "cpu.cfs_period_us").write_text("100000")
        (group / "cpu.cfs_quota_us").write_text("100000")
        path = tracking_env / "model"
        pyfunc.save_model(str(path), **loader_kwargs)
        script = f'echo $$ > {group}/cgroup.procs && exec "$@"'
        proc = subprocess.Popen(["sh", "-c", script, "sh", PYFUNC, "serve", "-m", str(path), "-p", "0", "-w", "0",
                                 "--env-manager", "local"], stderr=subprocess.PIPE, text=True,
                                env=dict(os.environ, PYFUNC_PYTHON=sys.executable))
        try:
            lines = []
            for line in proc.stderr:
                lines.append(line)
                if "ready (" in line:
                    break
            assert any("ready (1 worker," in line for line in lines), lines
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
    finally:
        group.rmdir()
