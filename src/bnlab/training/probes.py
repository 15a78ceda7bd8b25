"""Probes of *why* BN helps (Santurkar et al. 2018, "How Does Batch Normalization Help
Optimization?"): internal covariate shift and the smoothness of the loss along the gradient.

Notation, per replica (seed), on one training batch (x, y): weights w, loss L, gradient
g = grad L(w), learning rate lr. The layers are the hidden blocks 1..L and the output layer
L+1; a layer's parameters are its linear map or convolution plus the BN after it.

* **ICS of layer i** (their Definition 2.1), i = 2..L+1: G_i = dL/dW_i at w, and G'_i = dL/dW_i
  at w', where w' applies the gradient step w_j - lr * g_j to the parameters of layers j < i
  only. Recorded: ``ics_l2_layer<i>`` = ||G_i - G'_i||_2 and ``ics_cos_layer<i>`` =
  <G_i, G'_i> / (||G_i|| ||G'_i||). (For layer 1 nothing precedes it: its ICS is 0 by
  definition.) The step is plain SGD's, exact for the SGD runs the landscape experiment uses.
* **Loss landscape along the gradient**: L(w - eta * g) for eta in lr * (0.5, 1.0, ..., 4.0);
  ``loss_range`` = max - min over that grid.
* **Gradient predictiveness**: d(eta) = ||grad L(w - eta * g) - g||_2 over the same grid;
  ``grad_change`` = max_eta d(eta), and the effective beta-smoothness
  ``beta_smoothness`` = max_eta d(eta) / ||eta * g||.

* **Top Hessian eigenvalue** (``trainer.hessian_every``): ``hessian_top`` = the largest
  eigenvalue of H, the Hessian of the replica's loss in all its parameters (the quantity
  whose outliers Ghorbani et al. 2019 find BN removes), estimated by HESSIAN_ITERS steps of
  Lanczos: from a fixed random unit vector q_1, q_{j+1} is H q_j made orthogonal to q_1..q_j
  and normalized; the top eigenvalue of the tridiagonal T = Q^T H Q (alpha_j = q_j^T H q_j,
  beta_j = ||...||) is the estimate, which converges to H's top eigenvalue from below. Each
  H q is a Hessian-vector product by double backward (H is never formed). The replicas'
  parameters are disjoint, so H is block-diagonal: each replica's block of q normalized on its
  own makes one iteration K Lanczos runs at once.

* **Gradient norm per layer** (``trainer.grad_norm_every``): ``grad_norm/layer<i>`` =
  ||dL/dW_i||_2 for every layer i = 1..L+1, the quantity whose growth from the last layer to
  the first Yang et al. (2019) predict for BN networks (:func:`growth_factor` fits it).

Norms run over all of a replica's parameters (ICS: over W_i alone). The probes evaluate the
model functionally on copies of its buffers (BN's running statistics stay untouched), with
the random number generator reset to one state before each forward (every evaluation sees the
same dropout masks or BN noise) and restored afterwards, and never touch ``.grad``: a run
with probes trains exactly as the same run without them.
"""

from __future__ import annotations

import contextlib
import functools
import math
import re
from typing import Callable, Iterator, Optional

import torch
from torch import Tensor, nn
from torch.func import functional_call

from bnlab.layers.models import first_linear, replica_cross_entropy

ETA_MULTIPLES = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0)
HESSIAN_ITERS = 20  # Lanczos steps (Hessian-vector products) per estimate


def layer_of(name: str, num_blocks: int) -> int:
    """1-based layer index of a parameter name: blocks.<i>.* is layer i+1, head.* is L+1."""
    match = re.match(r"blocks\.(\d+)\.", name)
    if match:
        return int(match.group(1)) + 1
    if name.startswith("head."):
        return num_blocks + 1
    raise ValueError(f"parameter {name!r} belongs to no layer")


def layer_weight_names(model: nn.Module) -> list[str]:
    """The weight W_i of each layer: each block's linear map (or convolution), then the head's."""
    name_of = {id(p): n for n, p in model.named_parameters()}
    return [name_of[id(first_linear(block).weight)] for block in model.blocks] + ["head.weight"]


@contextlib.contextmanager
def same_randomness(device: torch.device) -> Iterator:
    """Yields ``reset()``, which puts the RNG back to its state on entry; restored on exit."""
    cuda = device.type == "cuda"
    cpu_state = torch.get_rng_state()
    cuda_state = torch.cuda.get_rng_state(device) if cuda else None

    def reset() -> None:
        torch.set_rng_state(cpu_state)
        if cuda:
            torch.cuda.set_rng_state(cuda_state, device)

    try:
        yield reset
    finally:
        reset()


def _norm(tensors: list[Tensor], k: int) -> Tensor:
    """Per-replica l2 norm, (K,), of tensors whose leading dimension splits into K replicas."""
    return torch.sqrt(sum((t.reshape(k, -1) ** 2).sum(1) for t in tensors))


def _dot(a: Tensor, b: Tensor, k: int) -> Tensor:
    return (a.reshape(k, -1) * b.reshape(k, -1)).sum(1)


LossAndGrad = Callable[[dict[str, Tensor]], tuple[Tensor, dict[str, Tensor]]]


def landscape_along_gradient(
    loss_and_grad: LossAndGrad,
    w: dict[str, Tensor],
    lr: float,
    k: int,
    eta_multiples=ETA_MULTIPLES,
    at_w: Optional[tuple[Tensor, dict[str, Tensor]]] = None,
) -> dict[str, Tensor]:
    """``loss``, ``loss_range``, ``grad_change`` and ``beta_smoothness`` (each (K,)) at ``w``.

    ``loss_and_grad(params)`` returns the K losses and the gradient of each parameter; the
    parameters' leading dimension splits into the K replicas. ``at_w``: its result at ``w``,
    when the caller has it already.
    """
    loss0, g = at_w if at_w is not None else loss_and_grad(w)
    g_norm = _norm(list(g.values()), k)
    losses, changes, betas = [], [], []
    for multiple in eta_multiples:
        eta = multiple * lr
        loss, g_eta = loss_and_grad({n: p - eta * g[n] for n, p in w.items()})
        change = _norm([g_eta[n] - g[n] for n in g], k)
        losses.append(loss)
        changes.append(change)
        betas.append(change / (eta * g_norm))
    losses_t = torch.stack(losses)
    return {
        "loss": loss0,
        "loss_range": losses_t.max(0).values - losses_t.min(0).values,
        "grad_change": torch.stack(changes).max(0).values,
        "beta_smoothness": torch.stack(betas).max(0).values,
    }


class Probes:
    """All probes of the module docstring for a replica-batched model
    (:mod:`bnlab.layers.models`).

    ``probes(x, y, lr)`` returns ``{metric: (K,) tensor}`` for a training batch (x, y).
    """

    def __init__(self, model: nn.Module, eta_multiples=ETA_MULTIPLES):
        self.model = model
        self.k = model.replicas
        self.names = [n for n, _ in model.named_parameters()]
        self.eta_multiples = tuple(eta_multiples)

    @functools.cached_property
    def layer(self) -> dict[str, int]:
        """Each parameter's layer (the ICS probe's; models of blocks and a head only)."""
        return {n: layer_of(n, len(self.model.blocks)) for n in self.names}

    @functools.cached_property
    def weights(self) -> list[str]:
        return layer_weight_names(self.model)

    def _loss_and_grad(self, x: Tensor, y: Tensor, reset) -> LossAndGrad:
        """params -> (losses (K,), gradients by name), on copies of the model's buffers."""

        def loss_and_grad(params: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
            leaves = {n: p.detach().requires_grad_() for n, p in params.items()}
            buffers = {n: b.clone() for n, b in self.model.named_buffers()}
            reset()
            with torch.enable_grad():
                logits = functional_call(self.model, (leaves, buffers), (x,))
                losses = replica_cross_entropy(logits, y)
                grads = torch.autograd.grad(losses.sum(), list(leaves.values()))
            return losses.detach(), dict(zip(leaves, grads))

        return loss_and_grad

    def _weights(self) -> dict[str, Tensor]:
        return {n: p.detach() for n, p in self.model.named_parameters()}

    def _ics(
        self, loss_and_grad: LossAndGrad, w: dict[str, Tensor], g: dict[str, Tensor], lr: float
    ) -> dict[str, Tensor]:
        k, out = self.k, {}
        for i, weight in enumerate(self.weights[1:], start=2):
            stepped = {n: (p - lr * g[n]) if self.layer[n] < i else p for n, p in w.items()}
            _, g_after = loss_and_grad(stepped)
            a, b = g[weight], g_after[weight]
            out[f"ics_l2_layer{i}"] = _norm([a - b], k)
            out[f"ics_cos_layer{i}"] = _dot(a, b, k) / (_norm([a], k) * _norm([b], k))
        return out

    @torch.no_grad()
    def ics(self, x: Tensor, y: Tensor, lr: float) -> dict[str, Tensor]:
        """``ics_l2_layer<i>`` and ``ics_cos_layer<i>`` for i = 2..L+1 (see the module doc)."""
        w = self._weights()
        with same_randomness(x.device) as reset:
            loss_and_grad = self._loss_and_grad(x, y, reset)
            return self._ics(loss_and_grad, w, loss_and_grad(w)[1], lr)

    @torch.no_grad()
    def landscape(self, x: Tensor, y: Tensor, lr: float) -> dict[str, Tensor]:
        with same_randomness(x.device) as reset:
            return landscape_along_gradient(
                self._loss_and_grad(x, y, reset), self._weights(), lr, self.k, self.eta_multiples
            )

    @torch.no_grad()
    def grad_norms(self, x: Tensor, y: Tensor) -> dict[str, Tensor]:
        """``layer<i>``: ||dL/dW_i||, (K,), for every layer on the batch (x, y), on copies of
        the buffers and with the random generator as it was (the run is untouched). Summed in
        float64: an exploding gradient's squares overflow float32 long before its entries."""
        with same_randomness(x.device) as reset:
            _, grads = self._loss_and_grad(x, y, reset)(self._weights())
        return {
            f"layer{i}": _norm([grads[w].double()], self.k) for i, w in enumerate(self.weights, 1)
        }

    @torch.no_grad()
    def hessian_top(self, x: Tensor, y: Tensor, iters: int = HESSIAN_ITERS) -> Tensor:
        """H's top eigenvalue, (K,), by ``iters`` Lanczos steps (see the module doc), on copies
        of the buffers and with the random generator as it was."""
        k, w = self.k, self._weights()
        shapes = [p.shape for p in w.values()]

        def split(flat: Tensor) -> list[Tensor]:  # (K, P) -> the parameters' shapes
            sizes = [math.prod(s) // k for s in shapes]
            return [t.reshape(s) for t, s in zip(flat.split(sizes, 1), shapes)]

        gen = torch.Generator(device=x.device).manual_seed(0)
        size = sum(math.prod(s) for s in shapes) // k
        q = torch.randn(k, size, generator=gen, device=x.device, dtype=torch.float64)
        basis, alphas, betas = [q / q.norm(dim=1, keepdim=True)], [], []
        with same_randomness(x.device) as reset, torch.enable_grad():
            leaves = [p.requires_grad_() for p in w.values()]
            buffers = {n: b.clone() for n, b in self.model.named_buffers()}
            reset()
            logits = functional_call(self.model, (dict(zip(w, leaves)), buffers), (x,))
            grads = torch.autograd.grad(
                replica_cross_entropy(logits, y).sum(), leaves, create_graph=True
            )
            for _ in range(iters):
                dtype = leaves[0].dtype
                hq = torch.autograd.grad(
                    grads, leaves, grad_outputs=split(basis[-1].to(dtype)), retain_graph=True
                )
                r = torch.cat([t.reshape(k, -1) for t in hq], 1).double()
                alphas.append((r * basis[-1]).sum(1))
                for b in basis:  # full reorthogonalization (twice is enough)
                    r = r - (r * b).sum(1, keepdim=True) * b
                for b in basis:
                    r = r - (r * b).sum(1, keepdim=True) * b
                betas.append(r.norm(dim=1))
                basis.append(r / betas[-1].clamp_min(1e-30)[:, None])
        t = torch.diag_embed(torch.stack(alphas, 1))
        off = torch.diag_embed(torch.stack(betas[:-1], 1), offset=1)
        return torch.linalg.eigvalsh(t + off + off.transpose(1, 2))[:, -1].float()

    @torch.no_grad()
    def __call__(self, x: Tensor, y: Tensor, lr: float) -> dict[str, Tensor]:
        """Both, sharing the gradient at the current weights."""
        w = self._weights()
        with same_randomness(x.device) as reset:
            loss_and_grad = self._loss_and_grad(x, y, reset)
            at_w = loss_and_grad(w)
            return {
                **self._ics(loss_and_grad, w, at_w[1], lr),
                **landscape_along_gradient(
                    loss_and_grad, w, lr, self.k, self.eta_multiples, at_w=at_w
                ),
            }


def gradient_norms(model: nn.Module, x: Tensor, y: Tensor) -> dict[str, Tensor]:
    """:meth:`Probes.grad_norms` of ``model`` on the batch (x, y), once."""
    return Probes(model).grad_norms(x, y)


def growth_factor(norms: Tensor, layers: Tensor | None = None) -> Tensor:
    """The per-layer growth of gradient norms from the last hidden layer to the first: exp of
    minus the least-squares slope of log ||dL/dW_i|| over i. ``norms``: (layers, K) for layers
    2..L (the input layer and the head have other fan-ins and are left out by the caller);
    returns (K,). 1 means flat; Yang et al. predict sqrt(pi / (pi - 1)) = 1.21 for a wide
    ReLU network with BN at initialization. ``layers``: the rows' layer indices, when some
    layers are missing (default: consecutive)."""
    logs = norms.log()
    i = torch.arange(len(logs), dtype=logs.dtype, device=logs.device) if layers is None else layers
    i = i.to(logs)
    i = i - i.mean()
    slope = (i[:, None] * (logs - logs.mean(0))).sum(0) / (i**2).sum()
    return torch.exp(-slope)
