"""The fc-tanh network and its matrix-free derivative products (``torch.func``).

Network (Cohen et al. 2021, Section 5 of the paper): Flatten → Linear(d, w) → tanh
→ Linear(w, w) → tanh → Linear(w, c), PyTorch default initialisation from a
recorded seed. Loss ``L = (1/n) Σ_i ½ ‖f(x_i) − e_{y_i}‖²``, so the GD edge of
stability is ``η λ_max(J Jᵀ) / n = 2``.

:class:`NetworkOps` works on a *flat* parameter vector θ (length P) and the
flattened residual ``z(θ) = f(θ) − targets`` (length N = n c) and provides:

* ``ntk_matvec(V)``: ``J Jᵀ V`` as a vector-Jacobian product followed by a
  Jacobian-vector product (``torch.func.vjp`` / ``jvp``, vmapped over the block), never forming J;
* ``hvp(w, U)``: Hessian of the scalar ``wᵀ f(θ)`` times ``U`` (forward-over-reverse);
* ``loss_hvp(U)``: Hessian of the loss times ``U``;
* ``second_derivative(U, W)``: ``Q(u, w) = ∂²f/∂θ² [u, w]`` (forward-over-forward).

Examples
--------
>>> import torch
>>> from eosdyn.nn.network import make_network, NetworkOps
>>> net = make_network(in_features=4, width=3, out_features=2, seed=0, dtype=torch.float64)
>>> ops = NetworkOps(net, torch.randn(5, 4, dtype=torch.float64), torch.zeros(5, 2, dtype=torch.float64))
>>> ops.n_params, ops.n_outputs
(35, 10)
"""

from __future__ import annotations

import numpy as np
import torch
from torch.func import functional_call, grad, jvp

from .._validate import check_int


def make_network(*, in_features: int = 3072, width: int = 200, out_features: int = 10, seed: int = 0,
                 dtype=torch.float32) -> torch.nn.Sequential:
    """The two-hidden-layer tanh network with PyTorch default initialisation.

    Parameters
    ----------
    in_features, width, out_features : int
        Layer sizes (paper: 3072, 200, 10 → 656,810 parameters).
    seed : int
        Seed of the initialisation (``torch.Generator`` state via ``torch.manual_seed``).
    dtype : torch.dtype
        Parameter dtype.

    Examples
    --------
    >>> net = make_network(seed=0)
    >>> sum(p.numel() for p in net.parameters())
    656810
    """
    in_features = check_int("in_features", in_features, 1)
    width = check_int("width", width, 1)
    out_features = check_int("out_features", out_features, 1)
    seed = check_int("seed", seed, 0, 2**63 - 1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = torch.nn.Sequential(
            torch.nn.Flatten(),
            torch.nn.Linear(in_features, width), torch.nn.Tanh(),
            torch.nn.Linear(width, width), torch.nn.Tanh(),
            torch.nn.Linear(width, out_features),
        )
    return net.to(dtype)


class NetworkOps:
    """Flat-parameter view of a network on a fixed full batch, with NTK/Hessian products.

    Parameters
    ----------
    model : torch.nn.Module
        The network (its parameters define the initial θ; the module itself is not modified).
    x : torch.Tensor, shape (n, ...)
        Inputs.
    targets : torch.Tensor, shape (n, c)
        Targets; residual ``z = f(θ) − targets`` flattened to length ``N = n c``.
    """

    def __init__(self, model: torch.nn.Module, x: torch.Tensor, targets: torch.Tensor):
        self.model = model
        self.names = [k for k, _ in model.named_parameters()]
        self.shapes = [p.shape for _, p in model.named_parameters()]
        self.sizes = [p.numel() for _, p in model.named_parameters()]
        self.dtype = next(model.parameters()).dtype
        self.x = x.to(self.dtype)
        self.targets = targets.to(self.dtype)
        self.n = int(x.shape[0])
        self.n_params = int(sum(self.sizes))
        self.n_outputs = int(targets.numel())
        self._target_flat = self.targets.reshape(-1)

    # -- parameters ------------------------------------------------------------------
    def theta0(self) -> torch.Tensor:
        """The module's current parameters as one flat (detached) vector."""
        return torch.cat([p.detach().reshape(-1) for p in self.model.parameters()]).to(self.dtype)

    def unflatten(self, theta: torch.Tensor) -> dict:
        parts = torch.split(theta, self.sizes)
        return {k: t.view(s) for k, t, s in zip(self.names, parts, self.shapes)}

    # -- function values -------------------------------------------------------------
    def f(self, theta: torch.Tensor) -> torch.Tensor:
        """Network outputs on the batch, flattened (length N)."""
        return functional_call(self.model, self.unflatten(theta), (self.x,)).reshape(-1)

    def residual(self, theta: torch.Tensor) -> torch.Tensor:
        """``z(θ) = f(θ) − targets`` (length N)."""
        return self.f(theta) - self._target_flat

    def loss_of_residual(self, z: torch.Tensor) -> torch.Tensor:
        """``L = (1/n) Σ ½ z²``."""
        return 0.5 * (z * z).sum() / self.n

    def loss(self, theta: torch.Tensor) -> torch.Tensor:
        return self.loss_of_residual(self.residual(theta))

    # -- first order -------------------------------------------------------------------
    # Blocks are handled by a Python loop over their (few) columns: on CPU this is much
    # faster than torch.func.vmap, whose per-call overhead dominates for small blocks.
    def linearize(self, theta: torch.Tensor):
        """Return ``(z, vjp_fn)`` at θ; ``vjp_fn(v) = Jᵀ v`` (length P), reusing one autograd graph."""
        th = theta.detach().requires_grad_(True)
        with torch.enable_grad():
            z = self.residual(th)

        def vjp_fn(v: torch.Tensor) -> torch.Tensor:
            (g,) = torch.autograd.grad(z, th, v, retain_graph=True)
            return g

        return z.detach(), vjp_fn

    def jvp(self, theta: torch.Tensor, U: torch.Tensor) -> torch.Tensor:
        """``J U`` for a block ``U`` of shape (b, P) → (b, N) (``torch.func.jvp`` per row)."""
        return torch.stack([jvp(self.f, (theta,), (u,))[1] for u in U])

    def ntk_matvec(self, theta: torch.Tensor, V: torch.Tensor, vjp_fn=None) -> torch.Tensor:
        """``J Jᵀ V`` for a block ``V`` of shape (b, N): a vjp then a jvp (J is never formed)."""
        if vjp_fn is None:
            _, vjp_fn = self.linearize(theta)
        G = torch.stack([vjp_fn(v) for v in V])
        return self.jvp(theta, G)

    # -- second order ------------------------------------------------------------------
    def hvp(self, theta: torch.Tensor, w: torch.Tensor, U: torch.Tensor) -> torch.Tensor:
        """Hessian of ``wᵀ f(θ)`` (= ``w · Q(·, ·)``) times the block ``U`` (b, P) → (b, P)."""
        g = grad(lambda t: torch.dot(w, self.f(t)))
        return torch.stack([jvp(g, (theta,), (u,))[1] for u in U])

    def loss_hvp(self, theta: torch.Tensor, U: torch.Tensor) -> torch.Tensor:
        """Hessian of the loss L times the block ``U`` (b, P) → (b, P) (forward-over-reverse)."""
        g = grad(self.loss)
        return torch.stack([jvp(g, (theta,), (u,))[1] for u in U])

    def second_derivative(self, theta: torch.Tensor, U: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
        """``Q(u_b, w_b) = Σ_ij ∂²f/∂θ_i∂θ_j u_i w_j`` for paired blocks (b, P) → (b, N) (forward-over-forward)."""
        def d2(u, w):
            return jvp(lambda t: jvp(self.f, (t,), (u,))[1], (theta,), (w,))[1]
        return torch.stack([d2(u, w) for u, w in zip(U, W)])


def numpy_operator(fn, dtype, chunk: int | None = None):
    """Wrap a torch block operator ``fn(T (b, N)) -> (b, M)`` as ``V (N, b) -> (M, b)`` float64 numpy.

    ``chunk`` limits the vmapped block size (memory).
    """
    def op(V: np.ndarray) -> np.ndarray:
        T = torch.from_numpy(np.ascontiguousarray(V.T)).to(dtype)
        outs = []
        step = T.shape[0] if not chunk else chunk
        with torch.no_grad():
            for s in range(0, T.shape[0], step):
                outs.append(fn(T[s:s + step]).detach().to(torch.float64))
        return torch.cat(outs).numpy().T
    return op
