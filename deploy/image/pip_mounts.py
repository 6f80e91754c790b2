"""The host's pip configuration, for `podman build`: mounted into the build, never baked in.

    python3 deploy/image/pip_mounts.py OUT_DIR

Reads what the host's pip is configured with (`python3 -m pip config list`, environment
included), writes it as one `OUT_DIR/pip.conf`, and prints the `podman build` arguments, one a
line: `--volume` for that file (at /etc/pip.conf, which pip reads) and for every local path the
configuration names (wheel directories, file:// indexes, constraints, the CA bundle), each
read-only at the same path, so the configuration means inside the build what it means here.
Volumes exist only while a RUN step runs: nothing of them reaches a layer.

If a wheel directory already holds torch's CPU build, it prints `--build-arg TORCH_INDEX=` too:
the Dockerfile then asks no other index for torch (PyTorch's, unreachable from such a machine).
With no pip configuration it prints nothing and the build uses the public indexes.
"""

from __future__ import annotations

import ast
import configparser
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

# Options whose values are local paths or URLs, possibly several separated by white space.
PATH_OPTIONS = {"find-links", "index-url", "extra-index-url", "constraint", "cert", "client-cert"}


def host_config() -> dict[str, dict[str, str]]:
    """{section: {option: value}} as `pip config list` shows it; environment wins."""
    out = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    sections: dict[str, dict[str, str]] = {}
    env: dict[str, str] = {}
    for line in out.splitlines():
        key, sep, value = line.partition("=")
        if not sep:
            continue
        section, _, option = key.rpartition(".")
        value = ast.literal_eval(value)
        if section == ":env:":
            env[option] = value
        else:
            sections.setdefault(section, {})[option] = value
    sections.setdefault("global", {}).update(env)
    return sections


def local_paths(option: str, value: str) -> list[Path]:
    """The host paths a value points at. An index's pages link up to its files (PEP 503
    `../../files/...`), so a file:// index brings its parent directory."""
    paths = []
    for item in value.split():
        url = urlparse(item)
        if url.scheme == "file":
            path = Path(unquote(url.path))
            paths.append(path.parent if option.endswith("index-url") else path)
        elif not url.scheme and item.startswith("/"):
            paths.append(Path(item))
    return [p for p in paths if p.exists()]


def main(out_dir: str) -> int:
    config = host_config()
    if not any(config.values()):
        return 0
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    parser = configparser.ConfigParser(interpolation=None)
    mounts: set[Path] = set()
    torch_cpu_local = False
    for section, options in config.items():
        parser[section] = options
        for option, value in options.items():
            if option in PATH_OPTIONS:
                for path in local_paths(option, value):
                    mounts.add(path)
                    if option == "find-links" and path.is_dir():
                        torch_cpu_local |= any(path.glob("torch-*+cpu-*.whl"))
    conf = out / "pip.conf"
    with conf.open("w") as f:
        parser.write(f)
    print(f"--volume={conf.resolve()}:/etc/pip.conf:ro")
    for path in sorted(mounts):
        print(f"--volume={path}:{path}:ro")
    if torch_cpu_local:
        print("--build-arg=TORCH_INDEX=")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
