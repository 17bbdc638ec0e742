"""deploy/: the KServe and Kubernetes manifests are valid against KServe's own CRD schemas
(fetched as the github.com/kserve/kserve Go module from the module proxy), with no field
the schemas lack (as `kubectl apply --validate=strict`), and the command they run is one
the real `pyfunc serve` runs: ready on the probe's path, answering on the paths KServe's
clients use, draining within the grace period the pods allow."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest
import requests
import yaml

import pyfunc

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KSERVE = "github.com/kserve/kserve@v0.16.0"
PYFUNC = os.environ.get("PYFUNC_BINARY") or str(Path(sys.executable).parent / "pyfunc")
BEHAVE = Path(__file__).resolve().parents[1] / "data" / "models" / "behave" / "behave_model.py"


@pytest.fixture(scope="module")
def crds():
    """KServe's CRDs by (group/version, kind): their openAPIV3Schema."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pyfunc-tests" / "gomod"
    go = shutil.which("go")
    assert go, "the Go toolchain is needed to fetch KServe's CRDs from the Go module proxy"
    env = dict(os.environ, GOPATH=str(cache), GOFLAGS="-modcacherw", GO111MODULE="on")
    proc = subprocess.run([go, "mod", "download", "-json", KSERVE], capture_output=True, text=True, env=env,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    module = Path(json.loads(proc.stdout)["Dir"])
    out = {}
    for path in (module / "config" / "crd" / "full").glob("serving.kserve.io_*.yaml"):
        crd = yaml.safe_load(path.read_text())
        for version in crd["spec"]["versions"]:
            key = ("%s/%s" % (crd["spec"]["group"], version["name"]), crd["spec"]["names"]["kind"])
            out[key] = version["schema"]["openAPIV3Schema"]
    assert ("serving.kserve.io/v1alpha1", "ClusterServingRuntime") in out
    assert ("serving.kserve.io/v1beta1", "InferenceService") in out
    return out


def unknown_fields(doc, schema, path="$"):
    """Fields of `doc` that `schema` does not declare, as strict validation reports them."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    found = []
    if isinstance(doc, dict):
        props = schema.get("properties")
        if props is None:
            extra = schema.get("additionalProperties")
            if isinstance(extra, dict):
                for k, v in doc.items():
                    found += unknown_fields(v, extra, "%s.%s" % (path, k))
            return found
        for k, v in doc.items():
            if k not in props:
                found.append("%s.%s" % (path, k))
            else:
                found += unknown_fields(v, props[k], "%s.%s" % (path, k))
    elif isinstance(doc, list) and isinstance(schema.get("items"), dict):
        for i, v in enumerate(doc):
            found += unknown_fields(v, schema["items"], "%s[%d]" % (path, i))
    return found


def check(doc, schema):
    jsonschema.Draft7Validator(schema).validate(doc)
    assert unknown_fields(doc, schema) == []


def load(name):
    return [d for d in yaml.safe_load_all((DEPLOY / name).read_text()) if d]


def test_kserve_manifests_match_kserves_crd_schemas(crds):
    docs = load("kserve/cluster-serving-runtime.yaml") + load("kserve/inference-service.yaml")
    for doc in docs:
        check(doc, crds[(doc["apiVersion"], doc["kind"])])
    runtime, isvc = docs
    formats = {(f["name"], f["version"]) for f in runtime["spec"]["supportedModelFormats"]}
    assert ("mlflow", "2") in formats and ("mlflow", "3") in formats
    assert isvc["spec"]["predictor"]["model"]["runtime"] == runtime["metadata"]["name"]
    assert isvc["spec"]["predictor"]["model"]["modelFormat"]["name"] == "mlflow"
    args = runtime["spec"]["containers"][0]["args"]
    grace = int(args[args.index("--grace-period") + 1])
    assert isvc["spec"]["predictor"]["terminationGracePeriodSeconds"] > grace


def test_the_checks_catch_a_misspelt_or_mistyped_field(crds):
    runtime = load("kserve/cluster-serving-runtime.yaml")[0]
    schema = crds[(runtime["apiVersion"], runtime["kind"])]
    runtime["spec"]["containers"][0]["readinesProbe"] = runtime["spec"]["containers"][0].pop("readinessProbe")
    assert unknown_fields(runtime, schema) == ["$.spec.containers[0].readinesProbe"]
    isvc = load("kserve/inference-service.yaml")[0]
    isvc["spec"]["predictor"]["minReplicas"] = "one"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(crds[(isvc["apiVersion"], isvc["kind"])]).validate(isvc)


def test_plain_kubernetes_manifests_are_consistent(crds):
    deployment, service, hpa = load("kubernetes/pyfunc.yaml")
    assert (deployment["kind"], service["kind"], hpa["kind"]) == ("Deployment", "Service", "HorizontalPodAutoscaler")
    # The pod's containers against Kubernetes' Container schema, as KServe's CRDs embed it.
    container_schema = crds[("serving.kserve.io/v1alpha1", "ClusterServingRuntime")]["properties"]["spec"][
        "properties"]["containers"]["items"]
    pod = deployment["spec"]["template"]
    for c in pod["spec"]["containers"]:
        check(c, container_schema)
    labels = pod["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["selector"].items() <= labels.items()
    container_ports = [p["containerPort"] for p in pod["spec"]["containers"][0]["ports"]]
    assert [p["targetPort"] for p in service["spec"]["ports"]] == container_ports == [8080, 8081]
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    args = pod["spec"]["containers"][0]["args"]
    assert pod["spec"]["terminationGracePeriodSeconds"] > int(args[args.index("--grace-period") + 1])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("manifest", ["kserve/cluster-serving-runtime.yaml", "kubernetes/pyfunc.yaml"])
def test_the_manifests_command_serves_and_drains(manifest, tmp_path):
    """The container's args run by the real pyfunc: the model where the manifest has it,
    loopback and a free port, and the local interpreter instead of a built environment."""
    doc = load(manifest)[0]
    spec = doc["spec"] if doc["kind"] == "ClusterServingRuntime" else doc["spec"]["template"]["spec"]
    container = spec["containers"][0]
    args = list(container["args"])
    model = tmp_path / "model"
    m = pyfunc.Model()
    m.signature = {"inputs": None, "outputs": None,
                   "params": '[{"name": "mode", "type": "string", "default": "sum", "shape": null}]'}
    pyfunc.save_model(str(model), loader_module="behave_model", code_path=[str(BEHAVE)], model=m)
    name = "wine-quality"
    port = free_port()
    for flag, value in (("--model-uri", str(model)), ("--host", "127.0.0.1"), ("--port", str(port)),
                        ("--name", name), ("--env-manager", "local")):
        args[args.index(flag) + 1] = value
    assert args[0] == "serve"
    env = dict(os.environ, PYFUNC_PYTHON=sys.executable)
    env.update({e["name"]: e["value"] for e in container.get("env", [])})
    env["PYFUNC_ENV_ROOT"] = str(tmp_path / "envs")
    proc = subprocess.Popen([PYFUNC, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        url = "http://127.0.0.1:%d" % port
        probe = container["readinessProbe"]["httpGet"]
        deadline = time.time() + 60
        while True:
            try:
                if requests.get(url + probe["path"], timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert proc.poll() is None, proc.communicate()[1]
            assert time.time() < deadline, "not ready within 60 s"
            time.sleep(0.2)
        assert requests.get(url + container["livenessProbe"]["httpGet"]["path"]).status_code == 200
        r = requests.post(url + "/v1/models/%s:predict" % name, json={"instances": [[1, 2], [3, 4]]})
        assert r.json() == {"predictions": [3, 7]}, r.text
        r = requests.post(url + "/v2/models/%s/infer" % name,
                          json={"inputs": [{"name": "a", "shape": [2], "datatype": "FP64", "data": [1, 2]}]})
        assert r.json()["outputs"][0]["data"] == [1.0, 2.0], r.text
        if doc["kind"] == "ClusterServingRuntime":
            annotations = doc["spec"]["annotations"]
            assert annotations["prometheus.kserve.io/port"] == "8080"
            metrics = requests.get(url + annotations["prometheus.kserve.io/path"]).text
        else:
            metrics = requests.get(url + doc["spec"]["template"]["metadata"]["annotations"]["prometheus.io/path"]).text
            hpa = load(manifest)[2]
            assert "\n%s " % hpa["spec"]["metrics"][0]["pods"]["metric"]["name"] in metrics
        assert "pyfunc_requests_total" in metrics
        started = time.time()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        grace = int(args[args.index("--grace-period") + 1])
        assert time.time() - started < grace
        assert "drained" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
