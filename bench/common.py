"""What the benchmarks share: paths, timing, targets, the results table, machine facts."""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "data" / "civil_mots.txt"
SHIPPED = ROOT / "model_store"  # the shipped models: `make serve` serves this directory
DEFAULT_MODEL = "civil-words"  # the notebook's model, the default one
MODEL = SHIPPED / f"{DEFAULT_MODEL}.safetensors"


class ExactnessError(AssertionError):
    """Our answer differs from the notebook's: the one failure that fails a benchmark run."""


@dataclass(frozen=True)
class Target:
    """A target on a measure: `must` has to hold, `aim` is what we go for."""

    must: float
    aim: float
    higher: bool = True  # a ratio to exceed (True) or a size to stay under (False)
    unit: str = "x"

    def met(self, value: float, bound: float) -> bool:
        return value >= bound if self.higher else value <= bound

    def __str__(self) -> str:
        sign = ">=" if self.higher else "<="
        return f"{sign} {_number(self.must)}{self.unit} (aim {_number(self.aim)}{self.unit})"


def _number(x: float) -> str:
    return f"{x:.0f}" if abs(x) >= 100 else f"{x:.3g}"


@dataclass
class Result:
    """One row of the results table."""

    measure: str
    ours: str
    baseline: str
    value: float | None  # what the target judges: a ratio, or a size
    target: Target | None
    judged: bool = True  # False in smoke mode: sizes are too small for timings to mean much
    note: str = ""

    @property
    def verdict(self) -> str:
        if self.target is None or self.value is None:
            return "-"
        if not self.judged:
            return "(smoke)"
        if not self.target.met(self.value, self.target.must):
            return "NO"
        return "yes, aim too" if self.target.met(self.value, self.target.aim) else "yes"

    @property
    def shown_value(self) -> str:
        if self.value is None:
            return "-"
        if self.target is not None and self.target.unit != "x":
            digits = 0 if abs(self.value) >= 10 else 2
            return f"{self.value:.{digits}f}{self.target.unit}"
        if self.value < 10:
            return f"{self.value:.2f}x"
        return f"{self.value:.1f}x" if self.value < 100 else f"{self.value:.0f}x"


def parse_args(description: str, extra: Callable[[argparse.ArgumentParser], None] | None = None):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--smoke", action="store_true", help="tiny sizes, a few seconds (for CI)")
    if extra is not None:
        extra(p)
    return p.parse_args()


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs)


def timed(fn: Callable[[], object]) -> float:
    """Wall time of one call, in seconds."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median_time(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of `repeats` calls (seconds)."""
    return median([timed(fn) for _ in range(repeats)])


# Runs a command and reports its wall time and peak RSS. A small process of its own: on Linux a
# child's ru_maxrss starts from the RSS of the process that forked it, so the benchmark (large
# after the others) cannot fork the measured command itself. The command's stderr passes through.
MEASURE = """
import os, subprocess, sys, time
start = time.perf_counter()
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(proc.pid, 0)
print(time.perf_counter() - start, usage.ru_maxrss, os.waitstatus_to_exitcode(status))
"""


@dataclass(frozen=True)
class Measured:
    wall: float  # seconds
    rss: float  # peak RSS of the command's process, MB
    stderr: str


def measure(cmd: Sequence[str], cwd: Path | None = None, env: dict | None = None) -> Measured:
    """Run a command to its end: its wall time, peak RSS and what it wrote to stderr."""
    r = subprocess.run(
        [sys.executable, "-c", MEASURE, *cmd], cwd=cwd, env=env, capture_output=True, text=True
    )
    try:
        wall, rss_kb, code = r.stdout.split()
    except ValueError:
        raise RuntimeError(f"{' '.join(cmd)}: {r.stderr[-2000:]}") from None
    if int(code) != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({code}): {r.stderr[-2000:]}")
    return Measured(float(wall), int(rss_kb) / 1024, r.stderr)  # ru_maxrss is in kB on Linux


def run_measured(cmd: Sequence[str], cwd: Path | None = None) -> tuple[float, float]:
    """Run a command to its end: (wall seconds, peak RSS in MB of that process)."""
    m = measure(cmd, cwd)
    return m.wall, m.rss


def civil_words() -> str:
    """The `civil-words` command of this environment."""
    return shutil.which("civil-words", path=str(Path(sys.executable).parent)) or "civil-words"


def seconds(s: float) -> str:
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.2f} ms"
    return f"{s * 1e6:.0f} us"


def machine_facts() -> list[str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import numpy
    import torch

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        f"date: {datetime.now(UTC).isoformat(timespec='seconds')}",
        f"cpu: {cpu}; nproc: {len(os.sched_getaffinity(0))}; load average: {load}",
        f"python {platform.python_version()}, torch {torch.__version__}, numpy {numpy.__version__}",
    ]


def print_table(results: Sequence[Result], title: str) -> None:
    headers = ("measure", "ours", "notebook/baseline", "ratio", "target", "pass?")
    rows = [
        (r.measure, r.ours, r.baseline, r.shown_value, str(r.target or "-"), r.verdict)
        for r in results
    ]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
    line = "-+-".join("-" * w for w in widths)
    print(f"\n{title}")
    print(line)
    print(" | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print(line)
    for row in rows:
        print(" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    print(line)
    for r in results:
        if r.note:
            print(f"  {r.measure}: {r.note}")


def exact_main(doc: str, run: Callable[[bool], Sequence[Result]], title: str) -> int:
    """A benchmark's command line: run it, print its table; exit 1 on an exactness failure."""
    args = parse_args(doc.splitlines()[0])
    try:
        results = run(args.smoke)
    except ExactnessError as e:
        print(f"EXACTNESS FAILURE: {e}", file=sys.stderr)
        return 1
    print_table(results, title)
    return 0
