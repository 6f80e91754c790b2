"""Training: `service.lm.model.train` against the notebook's one-hot loop (cells [40] and [41]).

In-process: the 600 steps of gradient descent on the shared corpus, ours then the notebook's,
alternately; the trained W must agree within 1e-4 and the losses too. Whole process:
`civil-words train` against the notebook's cells run as a script, alternately.

--smoke: the notebook runs 10 steps (its time is scaled to 600) and is checked against the
first 10 of our losses; the process comparison runs the notebook script for 10 steps.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/...`

import numpy as np
import torch

from bench import notebook
from bench.common import (
    CORPUS,
    ExactnessError,
    Result,
    Target,
    exact_main,
    median,
    seconds,
    timed,
)
from service.lm.corpus import read_words
from service.lm.model import TrainConfig, _descend, build_alphabet, count_bigrams, encode, train

STEPS = 600
SMOKE_STEPS = 10
IN_PROCESS = Target(100, 500)
WHOLE_PROCESS = Target(5, 10)


def in_process(smoke: bool) -> Result:
    words = read_words(CORPUS).words
    alphabet = build_alphabet(words)
    xs, ys = encode(words, alphabet)
    V = len(alphabet)

    def examples():
        return xs, ys

    nb_steps = SMOKE_STEPS if smoke else STEPS
    rounds, ours_per_round = (1, 3) if smoke else (3, 5)
    threads = torch.get_num_threads()
    ours_times, nb_one, nb_all = [], [], []  # the notebook's times per step
    for _ in range(rounds):
        for _ in range(ours_per_round):
            ours_times.append(timed(lambda: train(count_bigrams(xs, ys, V), examples=examples)))
        # The notebook on one thread: steady on a busy machine. Full length: checked below.
        ns = notebook.data_namespace(CORPUS)  # a fresh initial W
        with notebook.torch_threads(1):
            start = time.perf_counter()
            printed = notebook.run(notebook.train_cell(nb_steps), ns)
            nb_one.append((time.perf_counter() - start) / nb_steps)
        # And on torch's default threads (faster on an idle machine, far slower on a busy
        # one), for fewer steps: the baseline is the faster of the two.
        if threads > 1:
            short = max(1, nb_steps // 6)
            ns_all = notebook.data_namespace(CORPUS)
            with notebook.torch_threads(threads):
                start = time.perf_counter()
                notebook.run(notebook.train_cell(short), ns_all)
                nb_all.append((time.perf_counter() - start) / short)
    trained = train(count_bigrams(xs, ys, V), examples=examples)
    W, history = trained.W, trained.history
    nb_losses = [float(x) for x in printed.split()]
    if smoke:
        # Our fast path at the notebook's step count: `train` itself would take the literal
        # loop there (small problems), so call the descent it uses on the full corpus.
        W64, _ = _descend(count_bigrams(xs, ys, V), TrainConfig(steps=nb_steps), np.float64)
        W_ours = torch.from_numpy(W64.astype(np.float32))
    else:
        W_ours = W
    dW = (W_ours - ns["W"].detach()).abs().max().item()
    dloss = max(abs(a - b) for a, b in zip(history, nb_losses, strict=False))
    if dW > 1e-4 or dloss > 1e-4 or len(nb_losses) != nb_steps:
        raise ExactnessError(f"training: max |dW| {dW:.2e}, max |dloss| {dloss:.2e}")
    ours = median(ours_times)
    one, every = median(nb_one) * STEPS, median(nb_all) * STEPS if nb_all else math.inf
    nb = min(one, every)
    return Result(
        "train 600 steps, in process",
        seconds(ours),
        seconds(nb) + (" (from 10 steps)" if smoke else ""),
        nb / ours,
        IN_PROCESS,
        judged=not smoke,
        note=f"max |W - W_notebook| {dW:.1e}, max |loss - notebook| {dloss:.1e}; notebook "
        f"{seconds(one)} on 1 thread, {seconds(every)} on {threads} (from "
        f"{max(1, nb_steps // 6)} steps), the faster taken; medians of {len(ours_times)} / "
        f"{rounds} runs, interleaved",
    )


def whole_process(smoke: bool) -> Result:
    exe = shutil.which("civil-words", path=str(Path(sys.executable).parent)) or "civil-words"
    nb_steps = SMOKE_STEPS if smoke else STEPS
    rounds = 1 if smoke else 3
    # The notebook reads its word list in UTF-8. It runs on torch's default threads and on one
    # (see `in_process`), and the faster is the baseline; ours runs as users run it.
    env = {**os.environ, "PYTHONUTF8": "1"}
    one_thread = {**env, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory(prefix="civil-words-bench-") as tmp:
        d = Path(tmp)
        (d / "civil_mots.txt").symlink_to(CORPUS)
        (d / "notebook.py").write_text(notebook.script(nb_steps), encoding="utf-8")
        ours_cmd = [exe, "train", "--words", str(CORPUS), "--out", str(d / "model.safetensors")]
        nb_cmd = [sys.executable, "notebook.py"]

        def run(cmd: list[str], env: dict[str, str]) -> float:
            return timed(
                lambda: subprocess.run(cmd, cwd=d, env=env, check=True, capture_output=True)
            )

        ours_times, nb_all, nb_one = [], [], []
        for _ in range(rounds):
            ours_times.append(run(ours_cmd, env))
            nb_all.append(run(nb_cmd, env))
            nb_one.append(run(nb_cmd, one_thread))
    ours, every, one = median(ours_times), median(nb_all), median(nb_one)
    nb = min(every, one)
    return Result(
        "train, whole process",
        seconds(ours),
        seconds(nb) + (f" ({nb_steps} steps)" if smoke else ""),
        nb / ours,
        WHOLE_PROCESS,
        judged=not smoke,
        note=f"`civil-words train` vs the notebook cells as a script: {seconds(every)} on "
        f"torch's default threads, {seconds(one)} with OMP_NUM_THREADS=1, the faster taken; "
        f"medians of {rounds} runs each, interleaved",
    )


def run(smoke: bool = False) -> list[Result]:
    return [in_process(smoke), whole_process(smoke)]


def main() -> int:
    return exact_main(__doc__, run, "training")


if __name__ == "__main__":
    sys.exit(main())
