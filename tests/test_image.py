"""The production image, built from the Dockerfile and run the way a cluster runs it.

`make image-test` runs this file (and `make test` runs it with everything else). The image is
built by `deploy/image/build.sh`, as `make image` does: a cached build takes seconds. The
container then runs as the Kubernetes deployment runs the pod: read-only root file system, a
64 MiB tmpfs at /tmp and nothing else writable, every capability dropped, no new privileges,
uid 10001, the deployment's memory limit, its port published on 127.0.0.1 only. The tests talk
to it over HTTP, ask the engine to run the image's HEALTHCHECK, look inside the running
container, and end it with SIGTERM as the kubelet does.

A machine without podman or docker fails here: it cannot show that the image works.

The Kubernetes manifests are run too, by a real engine: `podman kube play` of the rendered
kustomizations (see `test_kube_play_base` and `test_kube_play_several_models`: what kube play
runs, and what it cannot express).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from service.web.served import ServedModel
from tests.conftest import LEGACY_MODEL, ROOT, SHIPPED_MODEL, TUNED_MODEL
from tests.server import free_port
from tests.test_deploy import render, tool

VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
TAG = f"civil-words:{VERSION}"
DEPLOYMENT = ROOT / "deploy" / "base" / "deployment.yaml"
BASE = ROOT / "deploy" / "base"
SEVERAL_MODELS = ROOT / "deploy" / "overlays" / "several-models"
NOTEBOOK_SEED = 2147483647
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


# ---------------------------------------------------------------- the manifests, run by podman


def podman_version() -> tuple[int, ...]:
    out = run("version", "--format", "{{.Client.Version}}").stdout.strip()
    return tuple(int(part) for part in out.split("-")[0].split(".")[:2])


def cli_sample(model: Path, n: int, seed: int) -> list[str]:
    """The words `civil-words sample` prints for this checkout: what the pod must answer."""
    proc = subprocess.run(
        [sys.executable, "-m", "service", "sample", "--model", str(model), "-n", str(n),
         "--seed", str(seed)],
        capture_output=True, text=True, cwd=ROOT, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def config_map(name: str, files: dict[str, Path]) -> dict:
    """The ConfigMap `kubectl create configmap NAME --from-file=...` makes of these files (the
    several-models overlay's publishing step), each under its key."""
    kubectl = tool("kubectl", "kubectl is needed to render the kustomizations")
    args = [f"--from-file={key}={path}" for key, path in files.items()]
    proc = subprocess.run(
        [kubectl, "create", "configmap", name, *args, "--dry-run=client", "-o", "yaml"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return yaml.safe_load(proc.stdout)


class KubePlay:
    """One `podman kube play` of rendered manifests, and its `podman kube down`.

    What the play is given is the kustomization as `kubectl apply -k` would send it, changed
    only where kube play needs it or where this machine's other runs could collide with it:
    - the container port gets `hostIP: 127.0.0.1` and a free `hostPort` (kube play has no
      Service and no cluster network: a host port is how it publishes);
    - the Deployment, its pod volumes and the ConfigMap get this run's suffix (podman names
      pods after the Deployment and volumes after the pod's volume, host-wide, and reuses a
      volume of the same name it finds: another run's /tmp or models otherwise);
    - the livenessProbe is dropped: podman turns an httpGet probe into `curl` run inside the
      container, which the image has not, and restarts the container when it fails (where
      podman's healthcheck timers run, under systemd). The test asks /healthz and /readyz
      itself, as the kubelet's probes would.
    """

    def __init__(self, docs: list[dict], tmp_path: Path):
        self.suffix = uuid.uuid4().hex[:8]
        self.port = free_port()
        self.log = tmp_path / "pod.log"
        self.file = tmp_path / "play.yaml"
        self.docs = docs
        self.deployment = next(d for d in docs if d["kind"] == "Deployment")
        self._adapt()
        self.file.write_text(yaml.safe_dump_all(self.docs, sort_keys=False), encoding="utf-8")
        self.pod: str | None = None
        self.container: str | None = None
        self.started = datetime.now(UTC)

    def _adapt(self) -> None:
        self.deployment["metadata"]["name"] += f"-{self.suffix}"
        spec = self.deployment["spec"]["template"]["spec"]
        [container] = spec["containers"]
        container.pop("livenessProbe", None)
        [http] = container["ports"]
        http.update(hostIP="127.0.0.1", hostPort=self.port)
        for volume in spec.get("volumes", []):
            volume["name"] += f"-{self.suffix}"
            if "configMap" in volume:
                volume["configMap"]["name"] += f"-{self.suffix}"
        for mount in container.get("volumeMounts", []):
            mount["name"] += f"-{self.suffix}"
        for doc in self.docs:
            if doc["kind"] == "ConfigMap":
                doc["metadata"]["name"] += f"-{self.suffix}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str, **kwargs) -> requests.Response:
        return requests.get(self.url + path, timeout=30, **kwargs)

    def env(self) -> dict[str, str]:
        [container] = self.deployment["spec"]["template"]["spec"]["containers"]
        return {e["name"]: e["value"] for e in container["env"]}

    def logs(self) -> str:
        if not self.log.exists():
            return "(no log)"
        # k8s-file lines: TIME STREAM TAG MESSAGE
        lines = self.log.read_text(encoding="utf-8", errors="replace").splitlines()
        return "\n".join(line.split(" ", 3)[-1] for line in lines)

    def play(self) -> None:
        """`podman kube play`; the container's log goes to a file that outlives the pod."""
        self.started = datetime.now(UTC) - timedelta(seconds=1)
        run(
            "kube", "play", "--quiet", "--log-driver=k8s-file", f"--log-opt=path={self.log}",
            str(self.file),
        )  # fmt: skip
        name = self.deployment["metadata"]["name"]
        pods = json.loads(run("pod", "ps", "--filter", f"name={name}", "--format=json").stdout)
        assert len(pods) == 1, f"one pod expected for {name}: {pods}"
        self.pod = pods[0]["Id"]
        info = self.inspect_pod()
        apps = [c for c in info["Containers"] if c["Id"] != info.get("InfraContainerID")]
        assert len(apps) == 1, info["Containers"]
        self.container = apps[0]["Id"]

    def inspect_pod(self) -> dict:
        info = json.loads(run("pod", "inspect", self.pod).stdout)
        return info[0] if isinstance(info, list) else info

    def inspect_container(self) -> dict:
        return json.loads(run("inspect", self.container).stdout)[0]

    def wait_ready(self, timeout: float = 120) -> float:
        """Seconds until /readyz answers 200 through the published port (the readinessProbe)."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            state = self.inspect_container()["State"]
            if not state["Running"] or state.get("Restarting"):
                pytest.fail(f"the pod's container is not running ({state}):\n{self.logs()}")
            try:
                if self.get("/readyz").status_code == 200:
                    return time.monotonic() - t0
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        pytest.fail(f"the pod was not ready within {timeout} s:\n{self.logs()}")

    def down(self) -> float:
        """Stop and remove the pod as `podman kube down` does; seconds the stop took.

        Before podman 5.1, `kube down` SIGKILLs the containers at once (containers/podman#22397),
        which no server can survive cleanly: there, the pod is first stopped as the kubelet stops
        it, SIGTERM and up to the pod's terminationGracePeriodSeconds (which kube play does not
        carry over: podman's own stop timeout is 10 s), and `kube down` then removes it."""
        grace = self.deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        t0 = time.monotonic()
        if podman_version() < (5, 1):
            run("pod", "stop", f"--time={grace}", self.pod, timeout=grace + 30)
        run("kube", "down", str(self.file), timeout=grace + 30)
        return time.monotonic() - t0

    def exit_codes(self) -> list[int]:
        """The exit codes podman recorded for the app container since the play, in order."""
        out = run(
            "events", "--stream=false", f"--since={self.started.isoformat()}",
            f"--filter=container={self.container}", "--filter=event=died",
            "--format={{.ContainerExitCode}}",
        ).stdout  # fmt: skip
        return [int(code) for code in out.split()]

    def cleanup(self) -> None:
        """Whatever the test left: the pod, and the volumes named for this run (kube down keeps
        a ConfigMap's volume before podman 4.4's `--force`)."""
        run("kube", "down", str(self.file), check=False)
        if self.pod:
            run("pod", "rm", "--force", "--time=0", self.pod, check=False)
        volumes = run("volume", "ls", "--format={{.Name}}", check=False).stdout.split()
        for volume in volumes:
            if volume.endswith(f"-{self.suffix}"):
                run("volume", "rm", "--force", volume, check=False)


def kube_play_and_check(play: KubePlay, models: dict[str, Path]) -> None:
    """Play, become ready, answer the notebook's words for every model, stop cleanly, leave
    no pod behind."""
    if not is_podman():
        pytest.skip("`kube play` is podman's; docker has no equivalent")
    [container] = play.deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == TAG, "the manifests name another image than this version's"
    try:
        play.play()
        ready = play.wait_ready()
        print(f"\nkube play: ready in {ready:.1f} s on 127.0.0.1:{play.port}")
        assert play.inspect_pod()["State"] == "Running"
        assert play.get("/healthz").status_code == 200
        default = play.env()["DEFAULT_MODEL"]
        listed = play.get("/models").json()["models"]
        assert {m["name"] for m in listed} == set(models)
        assert [m["name"] for m in listed if m["default"]] == [default]
        for name, path in models.items():
            expected = cli_sample(path, 5, NOTEBOOK_SEED)
            params = {"n": 5, "seed": NOTEBOOK_SEED, "model": name}
            r = play.get("/sample", params=params)
            assert r.status_code == 200, r.text
            assert r.json()["words"] == expected, name
            if name == default:  # and without model=, as most requests ask
                r = play.get("/sample", params={"n": 5, "seed": NOTEBOOK_SEED})
                assert r.json()["words"] == expected
        # The pod runs as the Deployment says: its user, no capabilities, a read-only root.
        info = play.inspect_container()
        assert info["HostConfig"]["ReadonlyRootfs"] is True
        status = run("exec", play.container, "cat", "/proc/1/status").stdout
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        assert fields["Uid"].split()[0] == str(pod_spec()["securityContext"]["runAsUser"])
        assert int(fields["CapEff"].strip(), 16) == 0 and fields["NoNewPrivs"].strip() == "1"

        took = play.down()
        print(f"kube down: stopped and removed in {took:.1f} s")
        codes = play.exit_codes()
        assert codes == [0], f"not a clean stop (exit codes {codes}):\n{play.logs()}"
        assert "Shutting down: Master" in play.logs()
        pods = json.loads(run("pod", "ps", "--filter", f"id={play.pod}", "--format=json").stdout)
        assert pods == [], "kube down left the pod"
    finally:
        play.cleanup()


def test_kube_play_base(image, tmp_path):
    """`podman kube play` of `kubectl kustomize deploy/base`: the pod becomes ready, answers
    the notebook's words on the published port, and `kube down` stops it cleanly.

    What kube play (podman 4.3, Debian 12's) runs: the Deployment, as one pod (no `replicas`:
    the HPA's), with the container's command, env, securityContext (user, read-only root, no
    capabilities, no new privileges), resource limits (memory, cpu), volumes and labels.
    What it cannot express, and so what this does not show:
    - the Service (no cluster network or DNS; the test publishes a host port instead), the
      HorizontalPodAutoscaler (one pod, never scaled) and the PodDisruptionBudget (nothing
      evicts): ignored;
    - the probes: readiness and startup are ignored; liveness becomes a `curl` healthcheck
      (dropped here, see `KubePlay`); the test polls /readyz itself;
    - terminationGracePeriodSeconds and the preStop hook: ignored (podman stops with its own
      10 s timeout, and before 5.1 `kube down` kills at once: see `KubePlay.down`);
    - the emptyDir at /tmp: a volume on disk named after the pod's volume, not memory, no
      sizeLimit; resource requests, topology spread, the rolling-update strategy: no scheduler.
    """
    docs = [d for d in yaml.safe_load_all(render(BASE)) if d]
    assert "HorizontalPodAutoscaler" in {d["kind"] for d in docs}  # played, and ignored
    # The image's model directory: both shipped models (the tuned one's words from the image's
    # Python walk, the host's from the C one: the same words).
    shipped = {"civil-words": SHIPPED_MODEL, "civil-words-tuned": TUNED_MODEL}
    kube_play_and_check(KubePlay(docs, tmp_path), shipped)


def test_kube_play_several_models(image, tmp_path):
    """The several-models overlay, played with the ConfigMap its README step makes (`kubectl
    create configmap --from-file`, binary files as binaryData): both models listed, each
    answering its own words, the overlay's DEFAULT_MODEL answering requests without `model=`.

    Beyond `test_kube_play_base`: podman mounts the ConfigMap as a read-only volume named after
    it, which `kube down` keeps before podman 4.4 (`--force`); a kubelet would instead update
    the mounted files when the ConfigMap changes (the overlay asks for a rollout anyway). The
    custom-model overlay is not played: its PersistentVolumeClaim becomes an empty podman
    volume, which is exactly the case where `serve` refuses to start.
    """
    models = {"civil-words": SHIPPED_MODEL, "civil-words-v1": LEGACY_MODEL}
    docs = [d for d in yaml.safe_load_all(render(SEVERAL_MODELS)) if d]
    [volume] = [
        v
        for d in docs
        if d["kind"] == "Deployment"
        for v in d["spec"]["template"]["spec"]["volumes"]
        if "configMap" in v
    ]
    files = {f"{name}.safetensors": path for name, path in models.items()}
    docs.append(config_map(volume["configMap"]["name"], files))
    kube_play_and_check(KubePlay(docs, tmp_path), models)


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
