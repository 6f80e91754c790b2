"""The bigram language model of the notebook: vocabulary, counts, training, and its tables.

Plain torch/numpy code with no web framework in it. The model's tables become a
`LanguageModel` (`service.lm.lm`), which the sampler, scorer and measures use.

Shapes: V is the number of symbols, `len(chars) + 1`; index 0 is the start/end marker `.`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from service.lm.corpus import EOS  # the start/end marker, always index 0
from service.lm.defaults import DEFAULT_SEED, TrainConfig

__all__ = ["DEFAULT_SEED", "EOS", "TrainConfig"]  # re-exported: the model's own settings


def build_alphabet(words: Sequence[str]) -> tuple[str, ...]:
    """The model's symbols in index order: `.` then `sorted(set(''.join(words)))`."""
    return (EOS, *sorted(set("".join(words))))


def encode(words: Sequence[str], alphabet: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """The notebook's training examples `(xs, ys)`, int64 (num,), in the notebook's order.

    Joining the words with single `.` markers yields exactly the notebook's pairs: the `.`
    between two words ends the first and starts the second.
    """
    text = EOS + EOS.join(words) + EOS
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    order = np.array([ord(c) for c in alphabet], dtype=np.uint32)
    sort = np.argsort(order)
    ix = sort[np.minimum(np.searchsorted(order[sort], codes), len(order) - 1)]
    if not np.array_equal(order[ix], codes):
        raise ValueError("a word holds a symbol outside the alphabet")
    ix = torch.from_numpy(ix.astype(np.int64))
    return ix[:-1], ix[1:]


def count_bigrams(xs: torch.Tensor, ys: torch.Tensor, V: int) -> torch.Tensor:
    """The (V, V) int64 matrix of bigram counts: counts[a, b] = #examples with x=a, y=b."""
    return torch.bincount(xs * V + ys, minlength=V * V).reshape(V, V)


def init_weights(V: int, seed: int = DEFAULT_SEED) -> torch.Tensor:
    """The notebook's initial W: (V, V) float32 standard normal from `manual_seed(seed)`."""
    return torch.randn((V, V), generator=torch.Generator().manual_seed(seed))


def _descend(counts: torch.Tensor, config: TrainConfig, dtype) -> tuple[np.ndarray, list[float]]:
    """Gradient descent on the notebook's loss, from the (V, V) count matrix alone.

    The loss, mean NLL over the examples plus `reg * mean(W**2)`, depends on the examples
    only through their counts, and so does its gradient:
    `(rows * softmax(W) - counts) / num + 2 * reg * W / V**2`.
    Each step is a few operations on (V, V) arrays, done in place: at this size the cost of a
    call, not the arithmetic, sets the pace.
    """
    V = counts.shape[0]
    C = counts.numpy().astype(dtype)
    rows = C.sum(axis=1)
    num = rows.sum()
    W = init_weights(V, config.seed).numpy().astype(dtype)
    reg_scale = dtype(config.reg / (V * V))
    lr = dtype(config.lr)
    # The gradient is built in E, in place, grouped as written above: regrouped (say, with
    # the constant lr * counts / num added apart) the float32 run, which `train` compares
    # with the float64 one, gathers several times more rounding noise.
    E, tmp = np.empty_like(W), np.empty_like(W)
    W_t, E_t = torch.from_numpy(W), torch.from_numpy(E)  # torch's exp is vectorised
    lr_num, lr_reg = lr / num, lr * 2 * reg_scale
    history: list[float] = []
    for _ in range(config.steps):
        # exp(W) as the notebook takes it, without shifting by the row max: then only a step
        # that overflows (or underflows a whole row) needs the shift.
        torch.exp(W_t, out=E_t)
        z = E.sum(axis=1)
        log_z = np.log(z)
        loss = (rows @ log_z - np.vdot(C, W)) / num + reg_scale * np.vdot(W, W)
        if not math.isfinite(loss):
            m = W.max(axis=1, keepdims=True)
            torch.exp(torch.from_numpy(W - m), out=E_t)
            z = E.sum(axis=1)
            log_z = np.log(z) + m[:, 0]
            loss = (rows @ log_z - np.vdot(C, W)) / num + reg_scale * np.vdot(W, W)
        history.append(float(loss))
        E *= (rows / z)[:, None]  # rows * softmax(W)
        E -= C
        E *= lr_num
        np.multiply(W, lr_reg, out=tmp)
        E += tmp  # lr * grad
        W -= E
    return W, history


def _descend_literally(
    xs: torch.Tensor,
    ys: torch.Tensor,
    V: int,
    config: TrainConfig,
    on_step: Callable[[int, float], None] | None,
) -> tuple[torch.Tensor, list[float]]:
    """The notebook's own training loop (one-hot inputs, autograd), operation for operation.

    Slow, but it rounds exactly as the notebook does; `train` uses it only where the loss
    surface amplifies rounding differences (see there).
    """
    num = xs.nelement()
    W = init_weights(V, config.seed).requires_grad_()
    xenc = F.one_hot(xs, num_classes=V).float()
    history: list[float] = []
    for k in range(config.steps):
        logits = xenc @ W
        counts = logits.exp()
        probs = counts / counts.sum(1, keepdims=True)
        loss = -probs[torch.arange(num), ys].log().mean() + config.reg * (W**2).mean()
        history.append(loss.item())
        W.grad = None
        loss.backward()
        W.data += -config.lr * W.grad
        if on_step is not None:
            on_step(k, history[-1])
    return W.detach(), history


STABLE_TOL = 1e-5  # float32 and float64 descents this close: rounding does not matter here
# Up to this much work (steps x examples x symbols, about 3 s here) the notebook's own loop is
# cheap enough to run as it stands, which rounds exactly as the notebook does.
LITERAL_BUDGET = 4e8
# Up to this much (about 15-20 s here: the shared corpus at 600 steps is 1.6e9) it is still run
# when the fast descent turns out to be chaotic; beyond, the float64 answer is given and reported.
FALLBACK_BUDGET = 2e9
NOTEBOOK_LOOP, FLOAT64_DESCENT = "notebook loop", "float64 descent"  # `Trained.path`


@dataclass
class Trained:
    """What `train` returns."""

    W: torch.Tensor  # (V, V) float32, the trained weights
    history: list[float]  # the loss before each step, as the notebook prints it
    path: str  # NOTEBOOK_LOOP or FLOAT64_DESCENT: how W was computed
    float32_gap: float | None  # max |float32 - float64 descent| over W and losses (None: not run)
    warning: str | None = None  # why W may differ from the notebook's by more than 1e-4


def train(
    counts: torch.Tensor,
    config: TrainConfig = TrainConfig(),
    on_step: Callable[[int, float], None] | None = None,
    examples: Callable[[], tuple[torch.Tensor, torch.Tensor]] | None = None,
) -> Trained:
    """Train W with the notebook's algorithm, from the (V, V) int64 bigram counts.

    `examples()` gives the notebook's examples `(xs, ys)` (int64 (num,), in its order); it is
    called only where the notebook's own loop is run, which needs them:
    - On small problems (`LITERAL_BUDGET`), that loop outright: it matches the notebook to the
      bit. There the notebook's float32 rounding weighs most: with few symbols and many
      examples per symbol it drifts by more than 1e-4 from the exact descent, and with a step
      too large for the data the descent is chaotic and any rounding difference grows.
    - Otherwise the descent on the count matrix in float64, hundreds of times faster. It is
      checked against the same descent in float32: if the two part, rounding decides the
      result, and the notebook's loop is run after all if it costs at most `FALLBACK_BUDGET`.
      Beyond that (a large word list) it would take hours: the float64 W is returned with a
      `warning` saying by how much the two descents part.
    Without `examples`, the float64 descent is returned in every case (with its warning).

    `on_step(k, loss)` is called for each step.
    """
    V = counts.shape[0]
    num = int(counts.sum())
    if num == 0:
        raise ValueError("no training examples")
    work = float(config.steps) * num * V
    if examples is not None and work <= LITERAL_BUDGET:
        W, history = _descend_literally(*examples(), V, config, on_step)
        return Trained(W, history, NOTEBOOK_LOOP, None)
    with np.errstate(over="ignore", invalid="ignore"):  # a diverging descent shows in `gap`
        W64, history = _descend(counts, config, np.float64)
        W32, history32 = _descend(counts, config, np.float32)
    gap = float(
        max(
            np.abs(W64 - W32).max(initial=0.0),
            max((abs(a - b) for a, b in zip(history, history32, strict=True)), default=0.0),
        )
    )
    warning = None
    if not gap <= STABLE_TOL:  # NaN included
        if examples is not None and work <= FALLBACK_BUDGET:
            W, history = _descend_literally(*examples(), V, config, on_step)
            return Trained(W, history, NOTEBOOK_LOOP, gap)
        warning = (
            f"the float32 and float64 descents part by {gap:.1e} (more than {STABLE_TOL:g}): "
            "here rounding sways the result, and the notebook's own float32 loop may end "
            f"elsewhere; that loop was not run (steps x examples x symbols = {work:.1e}, over "
            f"the budget of {FALLBACK_BUDGET:.0e}); W is the float64 descent's"
        )
    if on_step is not None:
        for k, loss in enumerate(history):
            on_step(k, loss)
    return Trained(torch.from_numpy(W64.astype(np.float32)), history, FLOAT64_DESCENT, gap, warning)


def model_loss(W: torch.Tensor, counts: torch.Tensor, reg: float) -> tuple[float, float]:
    """The notebook's loss of W on the examples counted in `counts`: (loss with reg, plain nll)."""
    C = counts.numpy().astype(np.float64)
    W64 = W.numpy().astype(np.float64)
    m = W64.max(axis=1)
    log_z = np.log(np.exp(W64 - m[:, None]).sum(axis=1)) + m  # log-sum-exp of each row
    nll = (C.sum(axis=1) @ log_z - np.vdot(C, W64)) / C.sum()
    return float(nll + reg * np.mean(W64 * W64)), float(nll)


@torch.inference_mode()
def probability_table(W: torch.Tensor) -> torch.Tensor:
    """P (V, V) float32: row ix is the notebook's `p` for the previous symbol ix, bit for bit.

    Each row goes through the notebook's own operations (one-hot times W, exp, divide by the
    row sum) so that sampling compares exactly the numbers the notebook compares.
    """
    V = W.shape[0]
    rows = []
    for ix in range(V):
        xenc = F.one_hot(torch.tensor([ix]), num_classes=V).float()
        counts = (xenc @ W).exp()
        rows.append(counts / counts.sum(1, keepdims=True))
    return torch.cat(rows)


def counts_table(counts: torch.Tensor, smoothing: float) -> torch.Tensor:
    """P (V, V) float32 of the counting model, as the course's counting loop computes it:
    `P = (N + K).float(); P /= P.sum(1, keepdims=True)`. An integral K is added as an integer,
    as the course's `N + 1`."""
    K = int(smoothing) if float(smoothing).is_integer() else float(smoothing)
    P = (counts + K).float()
    P /= P.sum(1, keepdims=True)
    return P


def probabilities(
    W: torch.Tensor, counts: torch.Tensor, method: str = "neural", smoothing: float | None = None
) -> tuple[torch.Tensor, np.ndarray]:
    """The model's next-symbol probabilities, two ways (rows: previous symbol, columns: next):

    - P (V, V) float32, the table the reference loop samples from, bit for bit: the notebook's
      softmax of W for the neural method, the counting loop's normalised `N + K` for counts;
    - logP (V, V) float64, the same distribution's natural logs, for scores and conditioning:
      `log_softmax(W)` for the neural method, `log((N + K) / row sum)` for counts.
    """
    if method == "neural":
        return probability_table(W), torch.log_softmax(W.double(), 1).numpy()
    if method == "counts":
        if smoothing is None or not smoothing > 0:
            raise ValueError("the counting model needs a smoothing K > 0")
        C = counts.numpy().astype(np.float64) + smoothing
        return counts_table(counts, smoothing), np.log(C / C.sum(axis=1, keepdims=True))
    raise ValueError(f"unknown method {method!r}")


def counting_weights(counts: torch.Tensor, smoothing: float) -> torch.Tensor:
    """The W (V, V) float32 stored for a counting model: log P, so that the file describes its
    model by itself (softmax(W) is P within float32 rounding). Served answers use P itself."""
    return torch.log(counts_table(counts, smoothing))
