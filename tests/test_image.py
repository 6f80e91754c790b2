"""The production image, built from the Dockerfile and run the way a cluster runs it.

`make image-test` runs this file (and `make test` runs it with everything else). The image is
built by `deploy/image/build.sh`, as `make image` does: a cached build takes seconds. The
container then runs as the Kubernetes deployment runs the pod: read-only root file system, a
64 MiB tmpfs at /tmp and nothing else writable, every capability dropped, no new privileges,
uid 10001, the deployment's memory limit, its port published on 127.0.0.1 only. The tests talk
to it over HTTP, ask the engine to run the image's HEALTHCHECK, look inside the running
container, and end it with SIGTERM as the kubelet does.

A machine without podman or docker fails here: it cannot show that the image works.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tomllib
import uuid
from pathlib import Path

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from service.web.served import ServedModel
from tests.conftest import ROOT, SHIPPED_MODEL
from tests.server import free_port

VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
TAG = f"civil-words:{VERSION}"
DEPLOYMENT = ROOT / "deploy" / "base" / "deployment.yaml"
# The notebook's first words for its seed (SPEC, section 1).
NOTEBOOK_WORDS = ["éssanée", "mexiomerér", "monts", "ex", "moût"]
SIZE_LIMIT = 1_100_000_000  # bytes: the target for the image


def engine() -> str:
    found = os.environ.get("ENGINE") or shutil.which("podman") or shutil.which("docker")
    if not found:
        pytest.fail("neither podman nor docker is installed: `make image-test` installs podman")
    return found


def is_podman() -> bool:
    return Path(engine()).name == "podman"


def engine_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("CONTAINERS_CONF", str(ROOT / "deploy" / "image" / "containers.conf"))
    return env


def run(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [engine(), *args],
        capture_output=True,
        text=True,
        env=engine_env(),
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        pytest.fail(
            f"{Path(engine()).name} {' '.join(args)}: exit {proc.returncode}\n{proc.stderr}"
        )
    return proc


def pod_spec() -> dict:
    return yaml.safe_load(DEPLOYMENT.read_text())["spec"]["template"]["spec"]


def container_spec() -> dict:
    return pod_spec()["containers"][0]


@pytest.fixture(scope="module")
def image() -> str:
    """The image, built (or found up to date in the build cache) as `make image` builds it."""
    proc = subprocess.run(
        [str(ROOT / "deploy" / "image" / "build.sh"), TAG],
        capture_output=True,
        text=True,
        env=engine_env(),
        timeout=1800,
        check=False,
    )
    assert proc.returncode == 0, (
        f"image build failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    )
    return TAG


class Container:
    def __init__(self, name: str, port: int):
        self.name, self.port = name, port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str, **kwargs) -> requests.Response:
        return requests.get(self.url + path, timeout=30, **kwargs)

    def exec(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        return run("exec", self.name, *cmd, check=check)

    def inspect(self) -> dict:
        return json.loads(run("inspect", self.name).stdout)[0]

    def logs(self) -> str:
        proc = run("logs", self.name, check=False)
        return proc.stdout + proc.stderr


def security_args() -> list[str]:
    """The deployment's securityContext and /tmp volume, as engine flags."""
    sc, pod_sc = container_spec()["securityContext"], pod_spec()["securityContext"]
    assert sc["readOnlyRootFilesystem"] and sc["capabilities"]["drop"] == ["ALL"]
    assert sc["allowPrivilegeEscalation"] is False
    limit = container_spec()["resources"]["limits"]["memory"]
    assert limit.endswith("Mi")
    return [
        "--read-only",
        "--tmpfs=/tmp:rw,size=64m,mode=1777",
        "--cap-drop=ALL",
        "--security-opt=no-new-privileges",
        f"--user={pod_sc['runAsUser']}:{pod_sc['runAsGroup']}",
        f"--memory={limit[:-2]}m",
    ]


def wait_ready(container: Container, timeout: float = 120) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = container.inspect()["State"]
        if not state["Running"]:
            pytest.fail(f"the container stopped ({state}):\n{container.logs()}")
        try:
            if container.get("/readyz").status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    pytest.fail(f"not ready within {timeout} s:\n{container.logs()}")


@pytest.fixture(scope="module")
def container(image):
    name = f"civil-words-test-{uuid.uuid4().hex[:8]}"
    port = free_port()
    run(
        "run",
        "--detach",
        f"--name={name}",
        *security_args(),
        f"--publish=127.0.0.1:{port}:8000",
        image,
    )
    c = Container(name, port)
    try:
        wait_ready(c)
        yield c
    finally:
        run("rm", "--force", "--time=0", name, check=False)


def test_ready_with_the_shipped_model(container):
    r = container.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {
        "status": "ready",
        "model": ServedModel.load(SHIPPED_MODEL, "civil-words").version,
    }


def test_sample_gives_the_notebooks_words(container):
    r = container.get("/sample", params={"n": 5, "seed": 2147483647})
    assert r.status_code == 200
    assert r.json()["words"] == NOTEBOOK_WORDS
    # and the same words as this checkout samples, for another seed and many words
    r = container.get("/sample", params={"n": 300, "seed": 12345})
    local = ServedModel.load(SHIPPED_MODEL, "civil-words").sampler.sample(300, 12345, 256)
    assert r.json()["words"] == local


def test_bad_input_is_a_problem_not_a_crash(container):
    r = container.get("/sample", params={"n": 0})
    assert r.status_code == 400
    assert r.headers["Content-Type"] == "application/problem+json"


def test_metrics_count_the_requests(container):
    for _ in range(3):
        assert container.get("/prob", params={"bigram": "es"}).status_code == 200
    r = container.get("/metrics")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain; version=")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }
    key = (
        "civil_words_http_requests_total",
        (("endpoint", "/prob"), ("method", "GET"), ("model", "civil-words"), ("status", "200")),
    )
    assert samples[key] >= 3
    # The multiprocess files are on the tmpfs, where the image says.
    files = container.exec("ls", "/tmp/metrics").stdout.split()
    assert any(f.startswith("counter_") for f in files), files


def test_healthcheck_passes(container, image):
    # podman shows it beside the config, docker inside; the OCI format would have dropped it.
    info = json.loads(run("image", "inspect", image).stdout)[0]
    check = info.get("Healthcheck") or info["Config"].get("Healthcheck")
    assert check and "/healthz" in " ".join(check["Test"]), f"no HEALTHCHECK kept: {info}"
    if is_podman():
        # No systemd here to run it on a timer: run it now, as the timer would.
        proc = run("healthcheck", "run", container.name, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    else:
        kind, *cmd = check["Test"]
        assert kind == "CMD"
        container.exec(*cmd)


def test_runs_as_the_cluster_runs_it(container):
    state = container.inspect()
    host = state["HostConfig"]
    assert host["ReadonlyRootfs"] is True
    status = container.exec("cat", "/proc/1/status").stdout
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    assert fields["Uid"].split()[0] == "10001"
    assert fields["Gid"].split()[0] == "10001"
    for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(fields[cap].strip(), 16) == 0, f"{cap}: {fields[cap]}"
    assert fields["NoNewPrivs"].strip() == "1"
    assert container.exec("touch", "/app/x", check=False).returncode != 0
    assert container.exec("touch", "/tmp/x", check=False).returncode == 0
    # gunicorn's master is PID 1, so the engine's SIGTERM reaches it.
    cmdline = container.exec("cat", "/proc/1/cmdline").stdout
    assert "civil-words" in cmdline or "gunicorn" in cmdline, cmdline


def test_access_log_is_json_lines(container):
    container.get("/sample", params={"n": 2, "seed": 1})
    records = [json.loads(line) for line in container.logs().splitlines() if line.startswith("{")]
    assert any(r["path"] == "/sample" and r["status"] == 200 for r in records)


IMAGE_CHECK = r"""
import importlib.metadata as md, importlib.util, json, os
import torch, torch.fx, torch.nn, numpy, sympy
site = os.path.dirname(torch.__path__[0])
names = [d.metadata["Name"] for d in md.distributions()]
paths = ["/etc/pip.conf", "/opt/wheels", "/root/.cache/pip", site + "/torch/include",
         site + "/torch/test"]
g = torch.Generator().manual_seed(0)
print(json.dumps({
    "torch": torch.__version__,
    "multinomial": torch.multinomial(torch.ones(4), 2, generator=g).tolist(),
    "pip": importlib.util.find_spec("pip") is not None,
    "setuptools": importlib.util.find_spec("setuptools") is not None,
    "nvidia": sorted(n for n in names if "nvidia" in n.lower()),
    "civil-words": md.version("civil-words"),
    "leftovers": sorted(p for p in paths if os.path.exists(p)),
}))
"""


def test_image_holds_the_runtime_and_nothing_more(image):
    proc = run("run", "--rm", *security_args(), "--entrypoint=python", image, "-c", IMAGE_CHECK)
    facts = json.loads(proc.stdout.strip().splitlines()[-1])
    assert facts["torch"] == "2.13.0+cpu"
    assert facts["multinomial"] == torch_reference()
    assert facts["nvidia"] == []
    assert facts["civil-words"] == VERSION
    assert not facts["pip"] and not facts["setuptools"]
    assert facts["leftovers"] == []
    size = json.loads(run("image", "inspect", image).stdout)[0]["Size"]
    print(f"\nimage {image}: {size} bytes ({size / 1e6:.0f} MB)")
    assert size <= SIZE_LIMIT


def torch_reference() -> list[int]:
    import torch

    return torch.multinomial(torch.ones(4), 2, generator=torch.Generator().manual_seed(0)).tolist()


def test_sigterm_ends_it_cleanly_within_the_grace_period(container):
    """As the kubelet stops a pod: SIGTERM, then SIGKILL after the grace period. gunicorn must
    have finished (exit 0) before then. Last in this file: it stops the shared container."""
    grace = pod_spec()["terminationGracePeriodSeconds"]
    run("kill", "--signal=TERM", container.name)
    try:
        run("wait", container.name, timeout=grace)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running {grace} s after SIGTERM:\n{container.logs()}")
    state = container.inspect()["State"]
    assert state["ExitCode"] == 0, container.logs()
    assert "Shutting down: Master" in container.logs()
