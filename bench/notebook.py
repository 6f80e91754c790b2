"""The course notebook's own cells (tests/notebook_reference.py), run as the baseline.

The cells run unchanged except where said: the number of training steps (smoke runs) and the
seed and number of words of the sampling cell are substituted, as tests/reference.py does.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import itertools
from pathlib import Path

import torch
import torch.nn.functional as F

from tests import notebook_reference as nb

TRAIN_LOOP = "for k in range(600):"
SAMPLE_SEED = "manual_seed(2147483647)"
SAMPLE_COUNT = "for i in range(5):"


def train_cell(steps: int = 600) -> str:
    assert TRAIN_LOOP in nb.CELL_TRAIN
    return nb.CELL_TRAIN.replace(TRAIN_LOOP, f"for k in range({steps}):")


def sample_cell(n: int, seed: int) -> str:
    cell = nb.CELL_SAMPLE
    assert SAMPLE_SEED in cell and SAMPLE_COUNT in cell
    return cell.replace(SAMPLE_SEED, f"manual_seed({seed})").replace(
        SAMPLE_COUNT, f"for i in range({n}):"
    )


def run(code: str, namespace: dict) -> str:
    """Run notebook code in `namespace`; returns what it printed."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(code, namespace)  # noqa: S102 - the notebook's own cells, from this repository
    return out.getvalue()


@contextlib.contextmanager
def torch_threads(n: int):
    """Run torch on n intra-op threads for a while."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def data_namespace(words_file: Path) -> dict:
    """Cell [40] run on `words_file`: the examples and the initial W (requires_grad)."""
    path = str(words_file)

    def notebook_open(name, *args, **kwargs):
        if name == "civil_mots.txt":
            return builtins.open(path, *args, encoding="utf-8", **kwargs)
        return builtins.open(name, *args, **kwargs)

    ns: dict = {"open": notebook_open}
    run(nb.PRELUDE + nb.CELL_DATA, ns)
    return ns


def sampling_namespace(W: torch.Tensor, alphabet: tuple[str, ...]) -> dict:
    """What cell [42] reads, for a given W.

    W is given without autograd: the loop's faster case (in the notebook, W still requires grad
    after cell [41], and every step also records a graph), so ratios against it are the
    conservative ones.
    """
    ns: dict = {}
    run(nb.PRELUDE + "import torch", ns)
    ns.update(
        W=W.detach().clone(),
        nb_chars=len(alphabet),
        itoc=dict(enumerate(alphabet)),
    )
    return ns


def sample(ns: dict, n: int, seed: int) -> list[str]:
    """The words cell [42] prints for `seed`, without their trailing '.'."""
    words = run(sample_cell(n, seed), ns).splitlines()
    assert len(words) == n and all(w.endswith(".") for w in words)
    return [w[:-1] for w in words]


def script(steps: int = 600) -> str:
    """The notebook's training as a standalone script (cells [40] and [41])."""
    return nb.PRELUDE + nb.CELL_DATA + train_cell(steps)


def score(W: torch.Tensor, alphabet: tuple[str, ...], words: list[str]) -> list[float]:
    """Each word's log-likelihood the notebook's way, bigram by bigram: cell [42]'s forward pass
    (one-hot row times W, exp, divide by the row sum) for the probability, and cell [14]'s
    `torch.log(p)` of the bigram that follows, summed (start and end markers included)."""
    V = len(alphabet)
    ctoi = {c: i for i, c in enumerate(alphabet)}
    out = []
    for w in words:
        chs = [".", *list(w), "."]
        logprob = 0.0
        for ch1, ch2 in itertools.pairwise(chs):
            xenc = F.one_hot(torch.tensor([ctoi[ch1]]), num_classes=V).float()
            logits = xenc @ W
            counts = logits.exp()
            p = counts / counts.sum(1, keepdims=True)
            logprob += torch.log(p[0, ctoi[ch2]]).item()
        out.append(logprob)
    return out


def state_loop(lm, n: int, seed: int) -> list[str]:
    """Cell [42]'s loop on any model's states: `torch.multinomial` on the row of the state
    (the notebook's `P[ix]`, whose state is the last symbol), the next state from the model's
    table, n words from `manual_seed(seed)` (without their '.')."""
    g = torch.Generator().manual_seed(seed)
    P = torch.tensor(lm.P)  # a copy: the model's table is read-only
    words = []
    for _ in range(n):
        out = []
        s = lm.start
        while True:
            ix = torch.multinomial(P[s], num_samples=1, replacement=True, generator=g).item()
            if ix == 0:
                break
            out.append(lm.alphabet[ix])
            s = int(lm.next[s, ix])
        words.append("".join(out))
    return words
