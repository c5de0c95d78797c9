"""Independent explicit-θ reference for every optimizer on a quadratic regression model.

Plain NumPy, float64, one member at a time, written from the textbook updates and NOT from
eosdyn's kernels (tests compare the two). The model (docs/qrm.md, Eq. 1-3 of Agarwala et al. 2023):

    f(θ) = y + G θ + ½ Q(θ, θ)        (D outputs, P parameters, Q of shape (D, P, P), symmetric
                                        in its last two indices)
    J(θ) = G + Q(θ, ·)                 (D × P)
    L(θ) = ½ Σ_a f_a(θ)²,  ∇L = Jᵀ f,  H = ∇²L = JᵀJ + Σ_a f_a Q_a.

With ``y = z₀`` and ``G = J₀`` (the QRM's initial residuals and Jacobian) GD on θ from θ₀ = 0
reproduces the (z, J) recursion of eosdyn.qrm.sweep exactly: z' = z − ηJg + ½η²Q(g, g),
J' = J − ηQ(g, ·). The QRM's random instance (:func:`problem`) is redrawn here from the
documented streams (SeedSequence(seed).spawn(3) -> Q, ẑ, Ĵ; Q = (G + Gᵀ)/√2; raw widths
σ_z = σ̃_z / D, σ_J = σ̃_J / (D P)^{1/4}, Eq. 29).

Optimizers (state starts at zero; ``g`` the (mini)batch gradient at the current θ; step t = 1, 2, …):

* ``gd``:        θ ← θ − η g
* ``momentum``:  v ← β v + g,  θ ← θ − η v                             (heavy ball, PyTorch form)
* ``nesterov``:  v ← β v + g,  θ ← θ − η (g + β v)                     (PyTorch form)
* ``rmsprop``:   s ← β₂ s + (1 − β₂) g²,  θ ← θ − η g / (√s + ε)
* ``adam``:      m ← β₁ m + (1 − β₁) g,  s ← β₂ s + (1 − β₂) g²,
                 m̂ = m / (1 − β₁ᵗ),  ŝ = s / (1 − β₂ᵗ),  θ ← θ − η m̂ / (√ŝ + ε)

Minibatch SGD over outputs: at step t the batch B_t (indices into the D outputs) defines
L_B = (D / b) · ½ Σ_{a∈B} f_a² (``scale="mean"``, an unbiased estimate of L; b = |B|) or
½ Σ_{a∈B} f_a² (``scale="sum"``); g_B = ∇L_B, H_B = ∇²L_B.

Sharpness variants at θ (``eta`` times):

* ``sharpness``                 η λ_max(J Jᵀ)              (NTK; = η λ_max(JᵀJ))
* ``hessian_sharpness``         η λ_max(JᵀJ + Σ_a f_a Q_a)
* ``preconditioned_sharpness``  η λ_max(P⁻¹ H), P = diag(√s + ε) (rmsprop) or diag(√ŝ + ε) (adam),
                                the preconditioner of the next update (moments updated with the
                                gradient at θ; Cohen et al. 2022's P_t includes g_t)
* ``batch_sharpness``           η E_B[g_Bᵀ H_B g_B / ‖g_B‖²] (mean over the batches given)
"""

from __future__ import annotations

import itertools
import math

import numpy as np

OPTIMIZERS = ("gd", "momentum", "nesterov", "rmsprop", "adam")
DEFAULT_HYPER = {"momentum": 0.9, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8}


# ----------------------------------------------------------------------------- the model
def problem(seed: int, *, D: int, P: int, sigma_z: float, sigma_J: float):
    """``(y, G, Q)`` of one QRM member: y = z₀ (D), G = J₀ (D × P), Q (D × P × P), float64.

    ``sigma_z``, ``sigma_J`` are the rescaled widths of Eq. 29 (as eosdyn.qrm.sweep takes them).
    """
    sq, sz, sj = np.random.SeedSequence(seed).spawn(3)
    g = np.random.default_rng(sq).standard_normal((D, P, P))
    Q = (g + np.swapaxes(g, 1, 2)) / math.sqrt(2.0)
    zhat = np.random.default_rng(sz).standard_normal(D)
    Jhat = np.random.default_rng(sj).standard_normal((D, P))
    return (sigma_z / D) * zhat, (sigma_J / (D * P) ** 0.25) * Jhat, Q


def residuals(theta, y, G, Q):
    """f(θ) = y + Gθ + ½ Q(θ, θ)."""
    return y + G @ theta + 0.5 * np.einsum("aij,i,j->a", Q, theta, theta)


def jacobian(theta, G, Q):
    """J(θ) = G + Q(θ, ·)  (D × P)."""
    return G + np.einsum("aij,j->ai", Q, theta)


def loss(theta, y, G, Q):
    """L(θ) = ½ Σ_a f_a²."""
    f = residuals(theta, y, G, Q)
    return 0.5 * float(f @ f)


def _rows(batch, D):
    return np.arange(D) if batch is None else np.asarray(batch, dtype=np.int64)


def _weight(batch, D, scale):
    if batch is None:
        return 1.0
    if scale == "mean":
        return D / len(batch)
    if scale == "sum":
        return 1.0
    raise ValueError(f"scale must be 'mean' or 'sum'; got {scale!r}")


def gradient(theta, y, G, Q, batch=None, scale="mean"):
    """g = ∇L (full batch) or g_B = ∇L_B over the rows ``batch`` of the outputs."""
    f = residuals(theta, y, G, Q)
    J = jacobian(theta, G, Q)
    r = _rows(batch, y.size)
    return _weight(batch, y.size, scale) * (J[r].T @ f[r])


def hessian(theta, y, G, Q, batch=None, scale="mean"):
    """H = JᵀJ + Σ_a f_a Q_a (full batch) or H_B over the rows ``batch``."""
    f = residuals(theta, y, G, Q)
    J = jacobian(theta, G, Q)
    r = _rows(batch, y.size)
    return _weight(batch, y.size, scale) * (J[r].T @ J[r] + np.einsum("a,aij->ij", f[r], Q[r]))


# ----------------------------------------------------------------------------- sharpness variants
def ntk_sharpness(theta, y, G, Q, eta):
    """η λ_max(J Jᵀ)."""
    J = jacobian(theta, G, Q)
    return eta * float(np.linalg.eigvalsh(J @ J.T)[-1])


def hessian_sharpness(theta, y, G, Q, eta):
    """η λ_max(JᵀJ + Σ_a f_a Q_a)."""
    return eta * float(np.linalg.eigvalsh(hessian(theta, y, G, Q))[-1])


def preconditioned_sharpness(theta, y, G, Q, eta, precond):
    """η λ_max(P⁻¹ H) for a diagonal preconditioner ``precond`` (the diagonal of P, > 0):
    the top eigenvalue of the symmetric P^{-1/2} H P^{-1/2}."""
    w = 1.0 / np.sqrt(np.asarray(precond, float))
    H = hessian(theta, y, G, Q)
    return eta * float(np.linalg.eigvalsh(w[:, None] * H * w[None, :])[-1])


def batch_sharpness(theta, y, G, Q, eta, batches, scale="mean"):
    """η E_B[g_Bᵀ H_B g_B / ‖g_B‖²], the mean over ``batches`` (a list of index arrays;
    :func:`all_batches` gives the exact expectation over uniformly drawn batches)."""
    vals = []
    for b in batches:
        g = gradient(theta, y, G, Q, b, scale)
        H = hessian(theta, y, G, Q, b, scale)
        vals.append(float(g @ H @ g) / float(g @ g))
    return eta * float(np.mean(vals))


def all_batches(D: int, b: int):
    """Every batch of ``b`` distinct outputs out of D (sorted index arrays)."""
    return [np.array(c) for c in itertools.combinations(range(D), b)]


# ----------------------------------------------------------------------------- optimizers
class State:
    """Optimizer state of one member: step count t, θ and the buffers (all zero at t = 0)."""

    def __init__(self, P: int, optimizer: str, **hyper):
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}; got {optimizer!r}")
        self.optimizer = optimizer
        self.hyper = {**DEFAULT_HYPER, **hyper}
        self.t = 0
        self.theta = np.zeros(P)
        self.v = np.zeros(P)  # velocity (momentum, nesterov)
        self.m = np.zeros(P)  # first moment (adam)
        self.s = np.zeros(P)  # second moment (rmsprop, adam)

    def precond(self) -> np.ndarray:
        """Diagonal of the current preconditioner P (ones for gd/momentum/nesterov): √s + ε
        (rmsprop), √ŝ + ε with ŝ = s / (1 − β₂ᵗ) (adam; ε alone at t = 0)."""
        h = self.hyper
        if self.optimizer == "rmsprop":
            return np.sqrt(self.s) + h["epsilon"]
        if self.optimizer == "adam":
            shat = self.s / (1.0 - h["beta2"] ** self.t) if self.t else self.s
            return np.sqrt(shat) + h["epsilon"]
        return np.ones_like(self.theta)

    def next_precond(self, g: np.ndarray) -> np.ndarray:
        """Diagonal of the preconditioner of the NEXT update, whose gradient is ``g`` (the
        moments updated with ``g``; adam's bias correction with t + 1): the P of
        ``preconditioned_sharpness`` at a recorded step (Cohen et al. 2022: P_t includes g_t).
        Ones for gd/momentum/nesterov."""
        h = self.hyper
        if self.optimizer not in ("rmsprop", "adam"):
            return np.ones_like(self.theta)
        s = h["beta2"] * self.s + (1.0 - h["beta2"]) * g * g
        if self.optimizer == "adam":
            s = s / (1.0 - h["beta2"] ** (self.t + 1))
        return np.sqrt(s) + h["epsilon"]

    def step(self, g: np.ndarray, eta: float) -> None:
        """One update with gradient ``g``."""
        h, o = self.hyper, self.optimizer
        self.t += 1
        if o == "gd":
            d = g
        elif o == "momentum":
            self.v = h["momentum"] * self.v + g
            d = self.v
        elif o == "nesterov":
            self.v = h["momentum"] * self.v + g
            d = g + h["momentum"] * self.v
        elif o == "rmsprop":
            self.s = h["beta2"] * self.s + (1.0 - h["beta2"]) * g * g
            d = g / (np.sqrt(self.s) + h["epsilon"])
        else:  # adam
            b1, b2 = h["beta1"], h["beta2"]
            self.m = b1 * self.m + (1.0 - b1) * g
            self.s = b2 * self.s + (1.0 - b2) * g * g
            mhat = self.m / (1.0 - b1 ** self.t)
            shat = self.s / (1.0 - b2 ** self.t)
            d = mhat / (np.sqrt(shat) + h["epsilon"])
        self.theta = self.theta - eta * d


def run(optimizer: str, y, G, Q, *, eta: float, steps: int, batches=None, scale="mean",
        record=("loss", "sharpness"), diverge_loss: float = 1e8, theta0=None, s0=None, t0: int = 0,
        **hyper) -> dict:
    """Run one member for ``steps`` steps and record per step t = 0..steps.

    ``batches``: None (full batch) or a sequence of ``steps`` index arrays (the batch of step
    t + 1 is ``batches[t]``). ``record``: names among ``loss``, ``sharpness``,
    ``hessian_sharpness``, ``preconditioned_sharpness`` (with the preconditioner of the next
    update, :meth:`State.next_precond`, from the gradient of the next step's batch, the full
    gradient at the last step), ``theta``, ``z`` (the residuals f), ``J``. Recording stops (NaN afterwards)
    once the loss exceeds ``diverge_loss`` or is not finite; ``out["diverged_at"]`` is that
    step (−1: never). ``s0``, ``t0``: a preloaded second moment and step count (a run that
    continues a frozen preconditioner: with β₂ → 1, ``s`` stays at ``s0``).
    """
    y, G, Q = (np.asarray(a, dtype=np.float64) for a in (y, G, Q))
    D, P = G.shape
    st = State(P, optimizer, **hyper)
    if theta0 is not None:
        st.theta = np.array(theta0, dtype=np.float64)
    if s0 is not None:
        st.s = np.array(s0, dtype=np.float64) * np.ones(P)
    st.t = int(t0)
    shapes = {"theta": (P,), "z": (D,), "J": (D, P)}
    out = {k: np.full((steps + 1,) + shapes.get(k, ()), np.nan) for k in record}
    out["diverged_at"] = -1
    for t in range(steps + 1):
        L = loss(st.theta, y, G, Q)
        if not (math.isfinite(L) and L <= diverge_loss):
            out["diverged_at"] = t
            break
        for k in record:
            if k == "loss":
                out[k][t] = L
            elif k == "sharpness":
                out[k][t] = ntk_sharpness(st.theta, y, G, Q, eta)
            elif k == "hessian_sharpness":
                out[k][t] = hessian_sharpness(st.theta, y, G, Q, eta)
            elif k == "preconditioned_sharpness":
                nb = None if batches is None or t == steps else batches[t]
                g_next = gradient(st.theta, y, G, Q, nb, scale)
                out[k][t] = preconditioned_sharpness(st.theta, y, G, Q, eta, st.next_precond(g_next))
            elif k == "theta":
                out[k][t] = st.theta
            elif k == "z":
                out[k][t] = residuals(st.theta, y, G, Q)
            elif k == "J":
                out[k][t] = jacobian(st.theta, G, Q)
            else:
                raise ValueError(f"unknown record name {k!r}")
        if t == steps:
            break
        b = None if batches is None else batches[t]
        st.step(gradient(st.theta, y, G, Q, b, scale), eta)
    out["state"] = st
    return out


def quadratic_run(optimizer: str, curvatures, *, eta: float, steps: int, theta0=None, s0=None, t0: int = 0,
                  **hyper):
    """The optimizer on the pure quadratic L(θ) = ½ Σ_i λ_i x_i² (Q = 0, G = diag(√λ),
    x = θ + θ₀ starts at θ₀): returns the loss per step (NaN after divergence)."""
    lam = np.asarray(curvatures, dtype=np.float64)
    P = lam.size
    G = np.diag(np.sqrt(lam))
    th0 = np.ones(P) if theta0 is None else np.asarray(theta0, float)
    y = G @ th0
    Q = np.zeros((P, P, P))
    return run(optimizer, y, G, Q, eta=eta, steps=steps, record=("loss",), diverge_loss=1e30, s0=s0, t0=t0,
               **hyper)["loss"]
