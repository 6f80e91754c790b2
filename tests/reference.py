"""Run the notebook's own cells (tests/notebook_reference.py) on any word list.

The cells read `civil_mots.txt` from the working directory and print as they go; here
`open('civil_mots.txt')` is pointed at the given file and `print` is captured, and the sampling
cells get their seed and word count substituted (the counting cell its smoothing K too). The
cells' code is otherwise run as it stands.
"""

from __future__ import annotations

import builtins
import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from service.lm.lm import LanguageModel
from service.lm.sampling import Sampler
from tests import notebook_reference as nb

NOTEBOOK_SEED = "manual_seed(2147483647)"
NOTEBOOK_COUNT = "for i in range(5):"
COUNTING_K = "P = (N + 1).float()"
COUNTING_LOOP = "g = torch.Generator()"  # where the counting cell's sampling starts


def table_lm(P, alphabet, logP=None, counts=None) -> LanguageModel:
    """The bigram model of a table `P` (V, V) float32 (torch or numpy), the rows the reference
    loop `torch.multinomial(P[ix], 1)` draws from. `logP` (the float64 logs that scores and
    conditioning use) defaults to the logs of P, `counts` to zeros."""
    P = P.numpy() if isinstance(P, torch.Tensor) else np.asarray(P)
    if logP is None:
        with np.errstate(divide="ignore"):
            logP = np.log(P.astype(np.float64))
    elif isinstance(logP, torch.Tensor):
        logP = logP.numpy()
    if counts is None:
        counts = np.zeros(P.shape, dtype=np.int64)
    elif isinstance(counts, torch.Tensor):
        counts = counts.numpy()
    return LanguageModel.bigram(P, logP, alphabet, counts)


def table_sampler(P, alphabet, logP=None, counts=None) -> Sampler:
    """The sampler of a bigram table (`table_lm`): the reference loop's words."""
    return Sampler(table_lm(P, alphabet, logP, counts))


@dataclass
class NotebookRun:
    W: torch.Tensor  # (V, V) float32, after training
    losses: list[float]  # the 600 printed losses
    examples: int  # NB exemples
    namespace: dict  # the cells' globals, for sampling

    def sample(self, n: int, seed: int) -> list[str]:
        """The words the sampling cell prints for `seed`, without the trailing '.'."""
        return _sample(nb.CELL_SAMPLE, self.namespace, n, seed)


def _sample(cell: str, namespace: dict, n: int, seed: int) -> list[str]:
    assert NOTEBOOK_SEED in cell and NOTEBOOK_COUNT in cell
    cell = cell.replace(NOTEBOOK_SEED, f"manual_seed({seed})")
    cell = cell.replace(NOTEBOOK_COUNT, f"for i in range({n}):")
    words = _run(cell, namespace).splitlines()
    assert len(words) == n and all(w.endswith(".") for w in words)
    return [w[:-1] for w in words]


@dataclass
class CountingRun:
    """The counting cell's table on a word list, ready to sample."""

    N: torch.Tensor  # (V, V) int64 bigram counts
    P: torch.Tensor  # (V, V) float32, (N + K) normalised per row
    namespace: dict

    def sample(self, n: int, seed: int) -> list[str]:
        """The words the counting loop prints for `seed`, without the trailing '.'."""
        loop = COUNTING_LOOP + nb.CELL_COUNTING.split(COUNTING_LOOP, 1)[1]
        return _sample(loop, self.namespace, n, seed)


def run_counting(words_file: str | Path, smoothing: float = 1) -> CountingRun:
    """Cell [40] (data, vocabulary) then the counting cell's table with smoothing K on
    `words_file`; K is written into the cell as given (an int stays an int, as the course's 1)."""
    ns = run_notebook(words_file, train=False).namespace
    table = nb.CELL_COUNTING.split(COUNTING_LOOP, 1)[0]
    assert COUNTING_K in table
    _run(table.replace(COUNTING_K, f"P = (N + {smoothing!r}).float()"), ns)
    return CountingRun(N=ns["N"].clone(), P=ns["P"].clone(), namespace=ns)


def _run(code: str, namespace: dict) -> str:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(code, namespace)  # noqa: S102 - the notebook's own cells, from this repository
    return buf.getvalue()


def run_notebook(words_file: str | Path, train: bool = True) -> NotebookRun:
    """Run cells [40] and [41] of the notebook on `words_file` (any path)."""
    words_file = str(words_file)

    def notebook_open(name, *args, **kwargs):
        if name == "civil_mots.txt":
            # The notebook relies on a UTF-8 locale; make that explicit.
            return builtins.open(words_file, *args, encoding="utf-8", **kwargs)
        return builtins.open(name, *args, **kwargs)

    ns: dict = {"open": notebook_open}
    out = _run(nb.PRELUDE + nb.CELL_DATA, ns)
    examples = int(out.split("NB exemples:")[1].split()[0])
    losses: list[float] = []
    if train:
        losses = [float(x) for x in _run(nb.CELL_TRAIN, ns).split()]
    return NotebookRun(W=ns["W"].detach().clone(), losses=losses, examples=examples, namespace=ns)


def notebook_on(
    W: torch.Tensor, alphabet: tuple[str, ...], words_file: str | Path | None = None
) -> NotebookRun:
    """A notebook namespace holding a given W (e.g. a served model's), ready to sample.

    With `words_file`, cell [40] is run first (examples, vocabulary), then W is replaced;
    the vocabulary must then equal `alphabet`.
    """
    if words_file is not None:
        run = run_notebook(words_file, train=False)
        assert tuple(run.namespace["itoc"][i] for i in range(len(alphabet))) == alphabet
        ns = run.namespace
    else:
        ns = {"itoc": dict(enumerate(alphabet)), "nb_chars": len(alphabet)}
        _run(nb.PRELUDE + "import torch\n", ns)
    ns["W"] = W.clone()
    return NotebookRun(W=ns["W"], losses=[], examples=0, namespace=ns)


def notebook_loss(run: NotebookRun) -> float:
    """The notebook's loss expression (cell [41]) for the namespace's W, without a step."""
    code = nb.CELL_TRAIN.split("# Forward pass")[1].split("print(loss.item())")[0]
    ns = run.namespace
    _run("\n".join(line[4:] for line in code.splitlines()), ns)
    return ns["loss"].item()
