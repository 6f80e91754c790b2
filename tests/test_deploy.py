"""The Docker image and the Kubernetes manifests: linted, and checked for what production needs.

No Docker engine or cluster is needed: hadolint and kubernetes-validate (strict schemas bundled
with it) run offline from the test extras, kustomizations are rendered with `kubectl kustomize`,
and the rest reads the Dockerfile and the YAML directly, checking that image and manifests agree
with each other (user id, port, model path, labels).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from service.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
DEPLOY = ROOT / "deploy"
BASE = DEPLOY / "base"
OVERLAY = DEPLOY / "overlays" / "custom-model"
SHIPPED_MODEL = "model_store/civil-words.safetensors"
TUNED_MODEL = "model_store/civil-words-tuned.safetensors"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"

# Not resolved: a venv's python is a symlink, and its tools sit beside the link.
VENV_BIN = Path(sys.executable).parent


def find_tool(name: str) -> str | None:
    """Path of a command-line tool: beside this python first (the venv), then on PATH."""
    local = VENV_BIN / name
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    return shutil.which(name)


def tool(name: str, hint: str = "install the test extras: pip install -e '.[test]'") -> str:
    found = find_tool(name)
    if found is None:
        pytest.fail(f"{name!r} not found in {VENV_BIN} nor on PATH; {hint}")
    return found


def run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=120, check=False)


def kubernetes_validate(*paths: Path) -> None:
    """Strict schema validation; an unknown kind/apiVersion (only a warning there) fails too."""
    proc = run(tool("kubernetes-validate"), "--strict", *map(str, paths))
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "Couldn't find schema" not in output, output


# ------------------------------------------------------------------------------ Dockerfile


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]

    def env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for args in self.all("ENV"):
            for item in shlex.split(args):
                key, sep, value = item.partition("=")
                assert sep, f"use ENV KEY=value, not the legacy form: ENV {args}"
                values[key] = value
        return values


def parse_dockerfile(path: Path = DOCKERFILE) -> list[Stage]:
    """Stages of a Dockerfile, each with its (KEYWORD, arguments) after line continuations."""
    logical: list[str] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and pending):
            continue  # comments may sit inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "the Dockerfile ends inside a line continuation"

    stages: list[Stage] = []
    for line in filter(None, logical):
        keyword, _, args = line.partition(" ")
        keyword, args = keyword.upper(), args.strip()
        if keyword == "FROM":
            words = args.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(image=words[0], name=name))
        else:
            assert stages, f"{keyword} before the first FROM"
            stages[-1].instructions.append((keyword, args))
    return stages


def copy_sources(stage: Stage) -> list[tuple[str, str, bool]]:
    """(source, destination, from_another_stage) of every COPY in a stage."""
    out = []
    for args in stage.all("COPY"):
        words = shlex.split(args)
        flags = [w for w in words if w.startswith("--")]
        paths = [w for w in words if not w.startswith("--")]
        from_stage = any(f.startswith("--from=") for f in flags)
        out.extend((src, paths[-1], from_stage) for src in paths[:-1])
    return out


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile()


@pytest.fixture(scope="module")
def final(stages) -> Stage:
    return stages[-1]


def image_uid(final: Stage) -> int:
    users = final.all("USER")
    assert users, "the final stage sets no USER: the service would run as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit(), f"USER {users[-1]}: use a numeric uid so runAsNonRoot can verify it"
    return int(uid)


def test_hadolint_passes_at_warning_threshold():
    proc = run(tool("hadolint"), "--failure-threshold", "warning", str(DOCKERFILE))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dockerfile_is_multi_stage_and_copies_the_venv(stages, final):
    assert len(stages) >= 2, "builder stage + final stage expected"
    builder_names = {s.name for s in stages[:-1]}
    copied = [(src, dest) for src, dest, from_stage in copy_sources(final) if from_stage]
    assert copied, "the final stage copies nothing from the builder"
    assert any(f"--from={n}" in args for n in builder_names for args in final.all("COPY"))


def test_base_images_are_pinned_python_311_slim(stages):
    names = {s.name for s in stages if s.name}
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert ">=3.11" in requires
    for stage in stages:
        if stage.image in names:
            continue
        repo, colon, tag = stage.image.partition("@")[0].rpartition(":")
        assert colon, f"{stage.image}: no version tag"
        assert repo == "python", stage.image
        assert tag != "latest"
        # A full patch version: 3.11 or 3-slim would move under us.
        assert re.fullmatch(r"3\.11\.\d+-slim(-[a-z]+)?", tag), f"{stage.image}: pin 3.11.N-slim"


def test_final_stage_runs_as_non_root_numeric_user(final):
    assert image_uid(final) != 0


def test_cmd_is_exec_form_civil_words_serve(final):
    cmds = final.all("CMD")
    assert cmds, "no CMD"
    assert json.loads(cmds[-1]) == ["civil-words", "serve"], "exec form keeps gunicorn PID 1"
    assert not final.all("ENTRYPOINT"), "an ENTRYPOINT would wrap the CMD"


def test_healthcheck_asks_healthz_without_curl(final):
    checks = final.all("HEALTHCHECK")
    assert len(checks) == 1, "one HEALTHCHECK in the final stage"
    assert "/healthz" in checks[0]
    assert " CMD " in f" {checks[0]} "
    assert "curl" not in checks[0] and "wget" not in checks[0], "the slim image has neither"


def test_environment_and_shipped_model(final):
    env = final.env()
    assert env.get("PYTHONDONTWRITEBYTECODE") == "1"
    assert env.get("PYTHONUNBUFFERED") == "1"
    assert env.get("PROMETHEUS_MULTIPROC_DIR", "").startswith("/tmp/"), "must be under /tmp"
    model_path = env.get("MODEL_PATH", "")
    assert model_path.startswith("/"), "MODEL_PATH must be absolute (not relative to WORKDIR)"
    copies = {src: dest for src, dest, from_stage in copy_sources(final) if not from_stage}
    for shipped in (SHIPPED_MODEL, TUNED_MODEL):
        assert shipped in copies, f"{shipped} is not copied into the image"
        assert (ROOT / shipped).is_file(), f"{shipped} is missing from the repository"
    dest = copies[SHIPPED_MODEL]
    # The image serves its model directory, the notebook's model by default.
    assert model_path == dest.rstrip("/") == copies[TUNED_MODEL].rstrip("/")
    assert env.get("DEFAULT_MODEL") == Path(SHIPPED_MODEL).stem
    assert final.all("EXPOSE") == ["8000"]


def test_torch_is_the_pinned_cpu_build(stages):
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = [d for d in deps if re.match(r"torch\s*==", d)]
    assert len(pins) == 1, "pyproject.toml should pin torch exactly"
    version = pins[0].split("==")[1].strip()
    runs = [args for stage in stages[:-1] for args in stage.all("RUN")]
    torch_runs = [r for r in runs if re.search(r"\btorch==", r)]
    assert torch_runs, "the builder does not install torch explicitly"
    words = shlex.split(torch_runs[0])
    # The +cpu local version can only come from the CPU build; PyPI's Linux wheel is CUDA's.
    assert f"torch=={version}+cpu" in words, f"torch differs from pyproject's ({version})"
    args = [a for stage in stages[:-1] for a in stage.all("ARG")]
    assert f"TORCH_INDEX={CPU_INDEX}" in args, "PyTorch's CPU index is the default"
    assert '--extra-index-url "$TORCH_INDEX"' in torch_runs[0]
    project = [r for r in runs if re.search(r"pip install\b.*\s\.(\s|$)", r)]
    assert project and runs.index(project[0]) > runs.index(torch_runs[0]), (
        "install torch first, then the project, so its torch pin is already satisfied"
    )
    for r in runs:
        if "pip install" in r:
            assert "--no-cache-dir" in r, r


def test_final_stage_runs_nothing(final):
    """Build-time volumes (the host's pip configuration) leave their mount points behind in a
    layer that ran a step; the final stage only copies."""
    assert not final.all("RUN")


def test_dockerignore_lets_in_only_what_the_dockerfile_copies(stages):
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert patterns[0] == "*", "an allowlist: exclude everything, then re-include"
    included = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    copied = {
        src.rstrip("/").removeprefix("./")
        for stage in stages
        for src, _, from_stage in copy_sources(stage)
        if not from_stage
    }
    assert included == copied
    # Those are what `pip install .` reads: the readme is named in pyproject.toml.
    assert {"pyproject.toml", "README.md", "service"} <= copied


# ---------------------------------------------------------------------- Kubernetes manifests


def kustomization_dirs() -> list[Path]:
    return sorted(p.parent for p in DEPLOY.rglob("kustomization.yaml"))


def manifest_files() -> list[Path]:
    """Whole objects: every YAML under deploy/ except kustomizations and patches, and the
    Prometheus operator's custom resources (tests/test_monitoring.py)."""
    return sorted(
        p
        for p in DEPLOY.rglob("*.yaml")
        if p.name != "kustomization.yaml"
        and not p.name.endswith(".patch.yaml")
        and DEPLOY / "monitoring" not in p.parents
    )


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def load(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def render(directory: Path) -> str:
    kubectl = find_tool("kubectl")
    if kubectl:
        proc = run(kubectl, "kustomize", str(directory))
    else:
        hint = "kubectl (or kustomize) is needed to render the kustomizations"
        proc = run(tool("kustomize", hint), "build", str(directory))
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def by_kind(docs: list[dict]) -> dict[str, dict]:
    kinds = [d["kind"] for d in docs]
    assert len(kinds) == len(set(kinds)), f"one object per kind expected: {kinds}"
    return {d["kind"]: d for d in docs}


@pytest.fixture(scope="module")
def base() -> dict[str, dict]:
    return by_kind([doc for path in manifest_files() if BASE in path.parents for doc in load(path)])


@pytest.fixture(scope="module")
def rendered() -> dict[Path, dict[str, dict]]:
    return {d: by_kind(list(yaml.safe_load_all(render(d)))) for d in kustomization_dirs()}


@pytest.fixture(scope="module")
def pod(base) -> dict:
    return base["Deployment"]["spec"]["template"]


@pytest.fixture(scope="module")
def container(pod) -> dict:
    containers = pod["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def env_of(container: dict) -> dict[str, str]:
    names = [e["name"] for e in container.get("env", [])]
    assert len(names) == len(set(names)), f"duplicate env entries: {names}"
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


def quantity(text: str | int) -> float:
    """A Kubernetes quantity as a number (cpu in cores, memory in bytes)."""
    units = {"m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(m|k|M|G|Ki|Mi|Gi)?", str(text))
    assert match, f"unexpected quantity {text!r}"
    return float(match[1]) * units.get(match[2] or "", 1)


@pytest.mark.parametrize("path", manifest_files(), ids=rel)
def test_manifest_validates_strictly(path):
    kubernetes_validate(path)


@pytest.mark.parametrize("directory", kustomization_dirs(), ids=rel)
def test_kustomization_renders_and_validates(directory, tmp_path):
    out = tmp_path / "rendered.yaml"
    out.write_text(render(directory))
    kubernetes_validate(out)


def test_lint_script_passes():
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run(
        ["bash", str(DEPLOY / "lint.sh")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("directory", kustomization_dirs(), ids=rel)
def test_kustomization_lists_every_file_beside_it(directory):
    kustomization = load(directory / "kustomization.yaml")[0]
    entries = list(kustomization.get("resources", []))
    entries += [p["path"] for p in kustomization.get("patches", []) if "path" in p]
    listed = set()
    for entry in entries:
        target = (directory / entry).resolve()
        assert target.exists(), f"{rel(directory)}: {entry} does not exist"
        if target.is_dir():
            assert (target / "kustomization.yaml").is_file(), f"{entry}: not a kustomization"
        else:
            listed.add(target)
    beside = {p.resolve() for p in directory.glob("*.yaml") if p.name != "kustomization.yaml"}
    assert listed == beside, f"{rel(directory)}: unlisted {sorted(beside - listed)}"


def test_every_kind_is_there(base):
    assert set(base) == {
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
    }


def test_probes(container):
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    startup = container["startupProbe"]
    # Importing torch takes seconds: give the start-up at least 30 s before liveness kicks in.
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 30
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8000}
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] in ("http", 8000)


def test_security_context_matches_the_image(pod, container, final):
    uid = image_uid(final)
    pod_sc, sc = pod["spec"]["securityContext"], container["securityContext"]
    assert pod_sc["runAsNonRoot"] is True
    assert pod_sc["runAsUser"] == uid, "runAsUser differs from the image's USER"
    assert sc.get("runAsUser", uid) == uid
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert (sc.get("seccompProfile") or pod_sc["seccompProfile"])["type"] == "RuntimeDefault"
    assert pod["spec"]["automountServiceAccountToken"] is False


def test_tmp_is_a_writable_empty_dir_holding_the_metrics(pod, container):
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert "/tmp" in mounts, "with a read-only root filesystem /tmp must be a volume"
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]]
    assert not mounts["/tmp"].get("readOnly", False)
    assert env_of(container)["PROMETHEUS_MULTIPROC_DIR"].startswith("/tmp/")


def test_resources_have_requests_and_limits(container):
    resources = container["resources"]
    for key in ("cpu", "memory"):
        request, limit = resources["requests"][key], resources["limits"][key]
        assert 0 < quantity(request) <= quantity(limit), f"{key}: {request} > {limit}"


def test_shutdown_outlasts_gunicorn_graceful_timeout(pod, container):
    graceful = int(env_of(container)["GRACEFUL_TIMEOUT"])
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    pre_stop = int(command[1])
    assert 0 < pre_stop
    # The kubelet's grace period covers the preStop hook and then gunicorn's own shutdown.
    assert pod["spec"]["terminationGracePeriodSeconds"] > pre_stop + graceful


def test_env_sets_every_setting_and_agrees_with_the_image(container, final):
    env = env_of(container)
    # Exactly the service's settings: a misspelt name would be silently ignored in production.
    assert set(env) == {name.upper() for name in Settings.model_fields}
    image_env = final.env()
    assert env["MODEL_PATH"] == image_env["MODEL_PATH"], "the base serves the baked-in model"
    assert env["PROMETHEUS_MULTIPROC_DIR"] == image_env["PROMETHEUS_MULTIPROC_DIR"]
    assert env["PORT"] == image_env["PORT"] == "8000"
    # Whatever the values, the service must accept them.
    Settings(**{name.lower(): value for name, value in env.items()})


def test_prometheus_scrape_annotations(pod):
    annotations = pod["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "8000"
    assert annotations["prometheus.io/path"] == "/metrics"


def test_selectors_target_the_deployment_pods(base, pod):
    deployment = base["Deployment"]
    labels = pod["metadata"]["labels"]

    def selects(selector: dict) -> bool:
        return bool(selector) and selector.items() <= labels.items()

    assert selects(deployment["spec"]["selector"]["matchLabels"])
    assert selects(base["Service"]["spec"]["selector"])
    assert selects(base["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"])
    target = base["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert target == {
        "apiVersion": deployment["apiVersion"],
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }


def test_service_maps_port_80_to_http(base):
    spec = base["Service"]["spec"]
    assert spec.get("type", "ClusterIP") == "ClusterIP"
    assert spec["ports"] == [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]


def test_scaling_and_disruption_budget(base):
    deployment, hpa = base["Deployment"], base["HorizontalPodAutoscaler"]
    pdb = base["PodDisruptionBudget"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert pdb["apiVersion"] == "policy/v1"
    low, high = hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]
    assert 2 <= low < high
    assert "replicas" not in deployment["spec"], "the HPA owns the count"
    [metric] = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"]["type"] == "Utilization"
    # A drain must be able to evict a pod, or node upgrades block.
    assert pdb["spec"]["minAvailable"] == 1 < low


def scaled_by_an_hpa(objects: list[dict]) -> list[dict]:
    """The objects some HorizontalPodAutoscaler among `objects` scales."""
    targets = {
        (t["apiVersion"].split("/")[0], t["kind"], t["name"])
        for o in objects
        if o["kind"] == "HorizontalPodAutoscaler"
        for t in [o["spec"]["scaleTargetRef"]]
    }
    return [
        o
        for o in objects
        if (o["apiVersion"].split("/")[0], o["kind"], o["metadata"]["name"]) in targets
    ]


def test_no_object_an_hpa_scales_sets_replicas(base, rendered):
    """`replicas` on a scaled Deployment fights the HPA: each apply resets the count it chose.
    Every manifest file and every rendered kustomization (an overlay could add it back)."""
    sets = {"deploy/base (files)": list(base.values())}
    sets.update({rel(d): list(objects.values()) for d, objects in rendered.items()})
    for name, objects in sets.items():
        scaled = scaled_by_an_hpa(objects)
        assert scaled, f"{name}: the HPA scales nothing here"
        for obj in scaled:
            assert "replicas" not in obj["spec"], f"{name}: {obj['kind']} sets replicas"


def test_common_labels_reach_every_object_but_no_selector(rendered):
    for directory, objects in rendered.items():
        for kind, obj in objects.items():
            labels = obj["metadata"]["labels"]
            assert labels.get("app.kubernetes.io/part-of") == "civil-words", (directory, kind)
        deployment = objects["Deployment"]
        assert "app.kubernetes.io/part-of" not in deployment["spec"]["selector"]["matchLabels"]


def test_custom_model_overlay_mounts_a_volume_and_points_model_path_at_it(rendered):
    objects = rendered[OVERLAY]
    pod_spec = objects["Deployment"]["spec"]["template"]["spec"]
    [container] = pod_spec["containers"]
    model_path = env_of(container)["MODEL_PATH"]
    assert model_path.startswith("/models/") and model_path.endswith(".safetensors")
    # The base's DEFAULT_MODEL names the image's own model; the overlay's must name its file.
    assert env_of(container)["DEFAULT_MODEL"] == Path(model_path).stem
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_spec["volumes"]}
    assert mounts["/models"]["readOnly"] is True
    claim = volumes[mounts["/models"]["name"]]["persistentVolumeClaim"]["claimName"]
    assert objects["PersistentVolumeClaim"]["metadata"]["name"] == claim
    # The patch merges: the rest of the pod (the /tmp volume, the other settings) is intact.
    assert "/tmp" in mounts and "emptyDir" in volumes[mounts["/tmp"]["name"]]
    assert env_of(container)["GRACEFUL_TIMEOUT"] == "20"


SEVERAL = DEPLOY / "overlays" / "several-models"


def test_several_models_overlay_serves_a_configmap_directory(rendered):
    objects = rendered[SEVERAL]
    pod_spec = objects["Deployment"]["spec"]["template"]["spec"]
    [container] = pod_spec["containers"]
    env = env_of(container)
    assert env["MODEL_PATH"] == "/models" and env["DEFAULT_MODEL"]
    Settings(**{name.lower(): value for name, value in env.items()})
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_spec["volumes"]}
    assert mounts["/models"]["readOnly"] is True
    assert volumes[mounts["/models"]["name"]]["configMap"]["name"] == "civil-words-models"
    assert "/tmp" in mounts and env["GRACEFUL_TIMEOUT"] == "20"  # the rest is intact


def test_a_model_published_through_a_configmap_arrives_whole(tmp_path):
    """The README's publishing step, offline: `kubectl create configmap --from-file` on a model
    directory carries each file as binaryData, byte for byte, under its file name; the default
    model the overlay names is among them."""
    import base64

    kubectl = tool("kubectl", "kubectl is needed to render the kustomizations")
    models = tmp_path / "models"
    models.mkdir()
    shipped = ROOT / SHIPPED_MODEL
    (models / "civil-words.safetensors").write_bytes(shipped.read_bytes())
    proc = run(
        kubectl, "create", "configmap", "civil-words-models", f"--from-file={models}",
        "--dry-run=client", "-o", "yaml",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    config_map = yaml.safe_load(proc.stdout)
    data = base64.b64decode(config_map["binaryData"]["civil-words.safetensors"])
    assert data == shipped.read_bytes()
    assert len(proc.stdout.encode()) < 2**20, "a ConfigMap holds at most 1 MiB"
    patch = load(SEVERAL / "models-configmap.patch.yaml")[0]
    [container] = patch["spec"]["template"]["spec"]["containers"]
    assert f"{env_of(container)['DEFAULT_MODEL']}.safetensors" in config_map["binaryData"]
