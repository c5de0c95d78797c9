"""Exact derivatives of the loss of a parameter-space quadratic model, and the central-flow solve.

The models (random QRM, the one-datapoint model with D = 1, the reduced Taylor model) are

    f(θ) = z₀ + J₀ θ + ½ Q(θ, θ),   J(θ) = J₀ + Q(θ, ·),   L(θ) = ½ ‖f(θ)‖²,

with ``Q`` (D × P × P) symmetric in its last two indices, ``Q(θ, ·)_aj = Σ_i Q_aij θ_i``.
Every derivative is a closed form (with ``z = f(θ)``, ``J = J(θ)``):

* gradient ``∇L = Jᵀ z``;
* Hessian ``H = Jᵀ J + Σ_a z_a Q_a``;
* third derivative contracted with two vectors,
  ``∇³L[u, v]_k = Σ_a (Q_a u)_k (J v)_a + (J u)_a (Q_a v)_k + J_ak (uᵀ Q_a v)``, i.e.
  ``∇³L[u, v] = Q(u,·)ᵀ J v + Q(v,·)ᵀ J u + Jᵀ q``, ``q_a = uᵀ Q_a v``;
* for a simple top eigenvalue ``S = λ_max(H)`` with unit eigenvector ``u``,
  ``∇S = ∇³L[u, u] = 2 Q(u,·)ᵀ J u + Jᵀ q``, ``q_a = uᵀ Q_a u``.

Each costs one GEMM with ``Q`` (D P² per vector), like one GD step. Private ``_``-prefixed
cores take float64 arrays of the right shapes unchecked (the producers call them in their
loops); the public functions check shapes and dtypes first and raise ``ValueError`` naming
the argument. Tested against central finite differences (``tests/test_central_flow.py``).

The central-flow solve (:func:`solve_sdcp`, :func:`central_velocity`) follows Cohen, Damian,
Talwalkar, Kolter, Lee, "Understanding optimization in deep learning with central flows"
(ICLR 2025, arXiv 2410.24206); see ``docs/flows.md``.
"""

from __future__ import annotations

import itertools

import numpy as np
import scipy.linalg as _sl

__all__ = ["model_state", "loss_gradient", "loss_hessian", "top_eigenpairs", "third_derivative",
           "grad_sharpness", "self_stabilization_terms", "solve_sdcp", "central_velocity", "flow",
           "flow_observables"]

#: default half-width of the band of η λ below 2 whose eigenvalues enter the edge subspace
EDGE_BAND = 0.1
#: default relaxation rate κ (per GD step) of the edge constraint (Baumgarte stabilisation)
EDGE_RATE = 4.0


# ----------------------------------------------------------------------------- checks
def _arr(name, a, ndim):
    a = np.asarray(a)
    if a.dtype.kind not in "iuf" or a.ndim != ndim:
        raise ValueError(f"{name} must be a real {ndim}-D array; got dtype {a.dtype}, shape {a.shape}")
    return np.ascontiguousarray(a, dtype=np.float64)


def _check_q(Q):
    Q = _arr("Q", Q, 3)
    D, P, P2 = Q.shape
    if P != P2 or D < 1 or P < 1:
        raise ValueError(f"Q must have shape (D, P, P) with D, P >= 1; got {Q.shape}")
    return Q


def _check_state(Q, J, z):
    Q = _check_q(Q)
    D, P, _ = Q.shape
    J = _arr("J", J, 2)
    if J.shape != (D, P):
        raise ValueError(f"J must have shape (D, P) = {(D, P)} to match Q; got {J.shape}")
    z = _arr("z", z, 1)
    if z.shape != (D,):
        raise ValueError(f"z must have shape (D,) = {(D,)} to match Q; got {z.shape}")
    return Q, J, z


def _check_vec(name, v, P):
    v = _arr(name, v, 1)
    if v.shape != (P,):
        raise ValueError(f"{name} must have shape (P,) = {(P,)}; got {v.shape}")
    return v


def _check_eta(eta):
    if isinstance(eta, (bool, np.bool_)) or not np.isscalar(eta) or not np.isfinite(eta) or not eta > 0:
        raise ValueError(f"eta must be a finite real number in (0, inf); got {eta!r}")
    return float(eta)


# ----------------------------------------------------------------------------- unchecked cores
def _qvec(Q, v):
    """``Q(v, ·)`` (D × P) for one vector, or (k, D, P) for the rows of a (k, P) array."""
    D, P, _ = Q.shape
    if v.ndim == 1:
        return (Q.reshape(D * P, P) @ v).reshape(D, P)     # Q symmetric in its last two indices
    return (Q.reshape(D * P, P) @ v.T).reshape(D, P, v.shape[0]).transpose(2, 0, 1)


def _state(Q, J0, z0, theta):
    Qt = _qvec(Q, theta)
    J = J0 + Qt
    z = z0 + J0 @ theta + 0.5 * (Qt @ theta)
    return z, J


def _hessian(Q, J, z):
    H = J.T @ J + np.tensordot(z, Q, axes=1)
    return 0.5 * (H + H.T)


def _third(Q, J, u, v):
    Qu, Qv = _qvec(Q, u), _qvec(Q, v)
    return Qu.T @ (J @ v) + Qv.T @ (J @ u) + J.T @ (Qu @ v)


def _third_many(Q, J, U):
    """``∇³L[u_i, u_j]`` for all pairs i ≤ j of the columns of U (P × k): array (k, k, P)."""
    k = U.shape[1]
    QU = _qvec(Q, U.T)                      # (k, D, P)
    JU = J @ U                              # (D, k)
    G = np.empty((k, k, J.shape[1]))
    for i in range(k):
        for j in range(i, k):
            g = QU[i].T @ JU[:, j] + QU[j].T @ JU[:, i] + J.T @ (QU[i] @ U[:, j])
            G[i, j] = g
            G[j, i] = g
    return G


def _top(H, k):
    P = H.shape[0]
    k = min(k, P)
    lam, U = _sl.eigh(H, subset_by_index=[P - k, P - 1], check_finite=False)
    return lam[::-1].copy(), np.ascontiguousarray(U[:, ::-1])


def _edge_space(H, eta, band, k0=4):
    """Eigenpairs of H with η λ ≥ 2 − band (at least the top one), largest first."""
    P = H.shape[0]
    k = min(k0, P)
    while True:
        lam, U = _top(H, k)
        n = int(np.sum(eta * lam >= 2.0 - band))
        if n < k or k == P:
            n = max(n, 1)
            return lam[:n], U[:, :n], lam[0]
        k = min(2 * k, P)


def _sdcp(a, G):
    """Solve the semidefinite complementarity problem of the central flow on the edge subspace.

    Find the symmetric k × k ``X ⪰ 0`` with ``M = a + ½ B(X) ⪰ 0`` and ``⟨X, M⟩ = 0``, where
    ``B(X)_ij = g_ij · Σ_kl X_kl g_kl`` (``G[i, j] = g_ij``). These are the KKT conditions of the
    convex program ``min_{X ⪰ 0} ⟨a, X⟩ + ¼ ‖Σ_kl X_kl g_kl‖²``: first the supports spanned by
    subsets of the edge eigenvectors (exact least squares; the usual case), else a log-barrier
    interior-point method followed by an exact solve on the face of the rank found (least squares
    in the range of X). Returns ``(X, residual)``.
    """
    k = a.shape[0]
    if k == 1:
        beta = float(G[0, 0] @ G[0, 0])
        x = max(0.0, -2.0 * a[0, 0] / beta) if beta > 0 else (0.0 if a[0, 0] >= 0 else np.inf)
        return np.array([[x]]), 0.0
    P = G.shape[2]
    iu = np.triu_indices(k)
    mult = np.where(iu[0] == iu[1], 1.0, 2.0)
    A = (G[iu] * mult[:, None]).T
    scale = max(np.abs(a).max(), 1e-300)
    # active set over the coordinate faces of the eigenbasis (the usual case): X supported on a
    # subset s of the edge eigenvectors with M = 0 on s, i.e. ½ A_sᵀA_s y = −(mult · a)_s; the
    # solution is unique (strictly convex program), so the first KKT point found is it
    if np.linalg.eigvalsh(a)[0] >= 0:
        return np.zeros((k, k)), 0.0
    N = A.T @ A
    for size in range(k, 0, -1):
        for sub in itertools.combinations(range(k), size):
            on = np.isin(iu[0], sub) & np.isin(iu[1], sub)
            y = np.zeros(iu[0].size)
            y[on], *_ = np.linalg.lstsq(0.5 * N[np.ix_(on, on)], -(mult * a[iu])[on], rcond=None)
            X = np.zeros((k, k))
            X[iu] = y
            X = X + np.triu(X, 1).T
            if np.linalg.eigvalsh(X)[0] < 0:
                continue
            M = a + 0.5 * (G @ (A @ y))
            res = max(0.0, -np.linalg.eigvalsh(M)[0], abs(np.sum(X * M))) / scale
            if res <= 1e-10:
                return X, float(res)
    Gm = G.reshape(k * k, P)
    Lip = 0.5 * np.linalg.norm(Gm, 2) ** 2
    if not Lip > 0:
        return np.zeros((k, k)), float(max(0.0, -np.linalg.eigvalsh(a)[0]))

    def grad(X):
        w = np.tensordot(X, G, axes=([0, 1], [0, 1]))
        return a + 0.5 * (G @ w)

    # log-barrier interior point: Newton steps on f(X) − μ log det X in vec(X) coordinates,
    # μ decreased geometrically (k² ≤ 16 unknowns: each step is a tiny dense solve)
    Hf = 0.5 * (Gm @ Gm.T)
    x0 = max(np.abs(a).max(), 1e-300) / Lip
    X = x0 * np.eye(k)
    mu = x0 * max(np.abs(grad(X)).max(), 1e-300)
    for _it in range(500):
        try:
            Xi = np.linalg.inv(X)
            Xi = 0.5 * (Xi + Xi.T)
            g = (grad(X) - mu * Xi).ravel()
            step = -np.linalg.solve(Hf + mu * np.kron(Xi, Xi), g).reshape(k, k)
            step = 0.5 * (step + step.T)
            # fraction to the boundary: keep X positive definite
            Li = np.linalg.inv(np.linalg.cholesky(X))
            wmin = np.linalg.eigvalsh(Li @ step @ Li.T)[0]
        except np.linalg.LinAlgError:
            break
        alpha = 1.0 if wmin > -0.95 else 0.95 / -wmin
        X = X + alpha * step
        dec = float(-g @ step.ravel())
        if dec <= 0.25 * mu:
            mu *= 0.2
        if mu <= 1e-15 * x0 * max(np.abs(a).max(), 1e-300):
            break
    # polish on the face: X = W Y Wᵀ, Y unconstrained r × r, the gradient zero on the face
    w, V = np.linalg.eigh(X)
    r = int(np.sum(w > 1e-9 * max(w.max(), 0.0))) if w.max() > 0 else 0
    if r:
        W = V[:, -r:]
        Gw = np.einsum("pi,qj,pqx->ijx", W, W, G)             # g in the face basis
        aw = W.T @ a @ W
        iu = np.triu_indices(r)
        mult = np.where(iu[0] == iu[1], 1.0, 2.0)
        A = (Gw[iu] * mult[:, None]).T                          # P × r(r+1)/2: Σ Y_kl g_kl
        # ⟨aw, Y⟩ + ¼ ‖A y‖²: normal equations ½ AᵀA y = −(mult · aw)
        rhs = -(mult * aw[iu])
        y, *_ = np.linalg.lstsq(0.5 * (A.T @ A), rhs, rcond=None)
        Yf = np.zeros((r, r))
        Yf[iu] = y
        Yf = Yf + np.triu(Yf, 1).T
        if np.linalg.eigvalsh(Yf)[0] >= 0:
            Xp = W @ Yf @ W.T
            Mp = grad(Xp)
            if np.linalg.eigvalsh(Mp)[0] >= -1e-10 * scale:
                X = 0.5 * (Xp + Xp.T)
    M = grad(X)
    res = max(0.0, -np.linalg.eigvalsh(M)[0], abs(np.sum(X * M))) / scale
    return X, float(res)


def _central(Q, J, z, eta, band, kappa, edge=True):
    """The central-flow velocity at one state: ``(θ̇, X, U, λ_edge, λ_max, residual)``."""
    grad = J.T @ z
    if not edge:
        return -eta * grad, np.zeros((0, 0)), None, np.zeros(0), np.nan, 0.0
    H = _hessian(Q, J, z)
    lam, U, lmax = _edge_space(H, eta, band)
    if eta * lmax < 2.0 - band:
        return -eta * grad, np.zeros((0, 0)), U[:, :0], lam[:0], lmax, 0.0
    G = _third_many(Q, J, U)
    a = G @ grad - (kappa / eta ** 2) * np.diag(eta * lam - 2.0)
    X, res = _sdcp(a, G)
    w = np.tensordot(X, G, axes=([0, 1], [0, 1]))
    return -eta * (grad + 0.5 * w), X, U, lam, lmax, res


# ----------------------------------------------------------------------------- public wrappers
def model_state(Q, J0, z0, theta):
    """Residual and Jacobian ``(z, J)`` of the quadratic model at ``θ``.

    ``z = z₀ + J₀ θ + ½ Q(θ, θ)``, ``J = J₀ + Q(θ, ·)``.

    Examples
    --------
    >>> Q = np.zeros((1, 2, 2)); Q[0] = np.eye(2)
    >>> z, J = model_state(Q, [[1.0, 0.0]], [0.5], [1.0, 2.0])
    >>> z.tolist(), J.tolist()
    ([4.0], [[2.0, 2.0]])
    """
    Q = _check_q(Q)
    D, P, _ = Q.shape
    J0 = _arr("J0", J0, 2)
    if J0.shape != (D, P):
        raise ValueError(f"J0 must have shape (D, P) = {(D, P)} to match Q; got {J0.shape}")
    z0 = _arr("z0", z0, 1)
    if z0.shape != (D,):
        raise ValueError(f"z0 must have shape (D,) = {(D,)} to match Q; got {z0.shape}")
    return _state(Q, J0, z0, _check_vec("theta", theta, P))


def loss_gradient(Q, J, z):
    """``∇L = Jᵀ z`` at the state ``(z, J)`` (``Q`` only fixes the shapes).

    Examples
    --------
    >>> loss_gradient(np.zeros((1, 2, 2)), [[1.0, 2.0]], [3.0]).tolist()
    [3.0, 6.0]
    """
    Q, J, z = _check_state(Q, J, z)
    return J.T @ z


def loss_hessian(Q, J, z):
    """The Hessian ``H = Jᵀ J + Σ_a z_a Q_a`` of ``L = ½‖z‖²`` (P × P, symmetric).

    Examples
    --------
    >>> Q = np.zeros((1, 2, 2)); Q[0] = [[1.0, 0.0], [0.0, -1.0]]
    >>> loss_hessian(Q, [[1.0, 0.0]], [0.5]).tolist()
    [[1.5, 0.0], [0.0, -0.5]]
    """
    return _hessian(*_check_state(Q, J, z))


def top_eigenpairs(H, k=1):
    """The ``k`` largest eigenvalues of a symmetric matrix (descending) and unit eigenvectors
    (columns), by LAPACK's ``syevr`` on that index range.

    Examples
    --------
    >>> lam, U = top_eigenpairs(np.diag([1.0, 3.0, 2.0]), k=2)
    >>> lam.tolist(), np.abs(U[:, 0]).tolist()
    ([3.0, 2.0], [0.0, 1.0, 0.0])
    """
    H = _arr("H", H, 2)
    if H.shape[0] != H.shape[1] or H.shape[0] < 1:
        raise ValueError(f"H must be a square (P, P) array; got {H.shape}")
    if not np.all(np.isfinite(H)):
        raise ValueError("H must be finite")
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)) or not 1 <= k <= H.shape[0]:
        raise ValueError(f"k must be an integer in [1, {H.shape[0]}]; got {k!r}")
    return _top(0.5 * (H + H.T), int(k))


def third_derivative(Q, J, u, v):
    """The third derivative of ``L`` contracted with ``u`` and ``v``: the vector ``∇³L[u, v]``.

    ``∇³L[u, v]_k = Σ_ij ∂³L/∂θ_i∂θ_j∂θ_k u_i v_j = Q(u,·)ᵀ J v + Q(v,·)ᵀ J u + Jᵀ q``,
    ``q_a = uᵀ Q_a v``; it is the gradient of ``θ ↦ uᵀ H(θ) v`` at fixed ``u, v``.

    Examples
    --------
    >>> Q = np.zeros((1, 2, 2)); Q[0] = np.eye(2)
    >>> third_derivative(Q, [[1.0, 0.0]], [1.0, 0.0], [1.0, 0.0]).tolist()  # 3 J Q u u
    [3.0, 0.0]
    """
    Q = _check_q(Q)
    D, P, _ = Q.shape
    J = _arr("J", J, 2)
    if J.shape != (D, P):
        raise ValueError(f"J must have shape (D, P) = {(D, P)} to match Q; got {J.shape}")
    return _third(Q, J, _check_vec("u", u, P), _check_vec("v", v, P))


def grad_sharpness(Q, J, z):
    """``S = λ_max(H)``, its unit eigenvector ``u`` and ``∇S = ∇³L[u, u]`` (simple eigenvalue).

    ``∇S = 2 Q(u,·)ᵀ J u + Jᵀ q`` with ``q_a = uᵀ Q_a u`` (Hellmann-Feynman: ``∂S = uᵀ(∂H)u``).
    At a degenerate top eigenvalue S is not differentiable; the value returned is then the
    derivative along LAPACK's eigenvector.

    Examples
    --------
    >>> Q = np.zeros((1, 2, 2)); Q[0] = np.eye(2)
    >>> S, u, dS = grad_sharpness(Q, [[1.0, 0.0]], [0.5])
    >>> float(S), dS.tolist()
    (1.5, [3.0, 0.0])
    """
    Q, J, z = _check_state(Q, J, z)
    lam, U = _top(_hessian(Q, J, z), 1)
    u = U[:, 0]
    return float(lam[0]), u, _third(Q, J, u, u)


def _force_rows(Q, J, z):
    """``(S, α, β)`` of each row of ``J`` (n, D, P), ``z`` (n, D): the top Hessian eigenvalue,
    α = −∇L·∇S and β = ‖∇S‖² (float64; NaN where the state is not finite)."""
    Q = np.asarray(Q, np.float64)
    n = J.shape[0]
    out = np.full((3, n), np.nan)
    for i in range(n):
        Ji, zi = np.asarray(J[i], np.float64), np.asarray(z[i], np.float64)
        if not (np.isfinite(Ji).all() and np.isfinite(zi).all()):
            continue
        with np.errstate(over="ignore", invalid="ignore"):
            H = _hessian(Q, Ji, zi)
            if not np.isfinite(H).all():
                continue
            lam, U = _top(H, 1)
            dS = _third(Q, Ji, U[:, 0], U[:, 0])
            out[:, i] = lam[0], -float((Ji.T @ zi) @ dS), float(dS @ dS)
    return out


def self_stabilization_terms(Q, J, z, eta):
    """The self-stabilization quantities of Damian, Nichani, Lee (ICLR 2023) at one state.

    Returns a dict: ``hessian_sharpness`` = η S, ``sharpening_force`` α = −∇L·∇S,
    ``stabilization_strength`` β = ‖∇S‖², ``predicted_oscillation`` 2α/β (the squared
    amplitude x² along ``u`` at which the cubic term cancels progressive sharpening; negative
    when the model is not sharpening).

    Examples
    --------
    >>> Q = np.zeros((1, 2, 2)); Q[0] = np.eye(2)
    >>> t = self_stabilization_terms(Q, [[1.0, 0.0]], [0.5], 1.0)
    >>> {k: round(v, 6) for k, v in t.items()}
    {'hessian_sharpness': 1.5, 'sharpening_force': -1.5, 'stabilization_strength': 9.0, 'predicted_oscillation': -0.333333}
    """
    eta = _check_eta(eta)
    S, u, dS = grad_sharpness(Q, J, z)
    grad = np.asarray(J, float).T @ np.asarray(z, float)
    alpha = -float(grad @ dS)
    beta = float(dS @ dS)
    return {"hessian_sharpness": eta * S, "sharpening_force": alpha, "stabilization_strength": beta,
            "predicted_oscillation": 2.0 * alpha / beta if beta > 0 else np.nan}


def solve_sdcp(a, G):
    """Solve the central flow's semidefinite complementarity problem on a k-dim edge subspace.

    Given the symmetric k × k matrix ``a`` and the vectors ``G[i, j] = g_ij`` (k × k × P,
    symmetric in i, j), find ``X ⪰ 0`` with ``M = a + ½ B(X) ⪰ 0`` and ``⟨X, M⟩ = 0``, where
    ``B(X)_ij = g_ij · Σ_kl X_kl g_kl``. For k = 1 this is ``X = max(0, −2a/‖g‖²)``; for k > 1
    the KKT conditions of ``min_{X ⪰ 0} ⟨a, X⟩ + ¼‖Σ X_kl g_kl‖²`` are solved exactly on the
    supports spanned by subsets of the basis, else by a log-barrier interior-point method and an
    exact least-squares solve on the face of X's rank.

    Returns ``(X, residual)``; ``residual`` is max(−λ_min(M), abs⟨X, M⟩) relative to max abs(a).

    Examples
    --------
    >>> X, res = solve_sdcp(np.array([[-1.0]]), np.array([[[2.0, 0.0]]]))
    >>> X.tolist(), res
    ([[0.5]], 0.0)
    """
    a = _arr("a", a, 2)
    k = a.shape[0]
    if a.shape != (k, k) or k < 1:
        raise ValueError(f"a must be a square (k, k) array; got {a.shape}")
    G = _arr("G", G, 3)
    if G.shape[:2] != (k, k):
        raise ValueError(f"G must have shape (k, k, P) with k = {k}; got {G.shape}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(G))):
        raise ValueError("a and G must be finite")
    return _sdcp(0.5 * (a + a.T), 0.5 * (G + G.transpose(1, 0, 2)))


def central_velocity(Q, J, z, eta, *, band=EDGE_BAND, kappa=EDGE_RATE):
    """The central-flow velocity ``dθ/dt`` (t in GD steps) at the state ``(z, J)``.

    ``dθ/dt = −η [∇L + ½ Σ_ij X_ij ∇³L[u_i, u_j]]`` with ``u_i`` the eigenvectors of the
    Hessian whose η λ_i ≥ 2 − ``band`` and ``X`` the solution of :func:`solve_sdcp` with
    ``a_ij = ∇³L[u_i, u_j]·∇L − (κ/η²)(η λ_i − 2) δ_ij``: the sharpness cannot rise above 2/η
    and relaxes back to it at rate ``kappa`` (per step) once there. The oscillation covariance
    is ``Σ = U X Uᵀ``. Below the band, the velocity is gradient flow's ``−η ∇L``.

    Returns a dict: ``velocity``, ``X``, ``U``, ``edge_eigenvalues``, ``lambda_max``,
    ``residual`` (of the SDCP).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> G = rng.standard_normal((2, 3, 3)); Q = G + G.transpose(0, 2, 1)
    >>> out = central_velocity(Q, 0.1 * rng.standard_normal((2, 3)), [0.01, 0.02], 0.1)
    >>> out["X"].shape  # far below the edge: gradient flow
    (0, 0)
    """
    Q, J, z = _check_state(Q, J, z)
    eta = _check_eta(eta)
    band, kappa = _check_band_kappa(band, kappa)
    v, X, U, lam, lmax, res = _central(Q, J, z, eta, band, kappa)
    return {"velocity": v, "X": X, "U": U, "edge_eigenvalues": lam, "lambda_max": lmax, "residual": res}


def _flow_rhs(t, y, Q, J0, z0, eta, edge, band, kappa):
    z, J = _state(Q, J0, z0, y)
    return _central(Q, J, z, eta, band, kappa, edge)[0]


def flow(Q, J0, z0, eta, times, *, theta0=None, edge=True, band=EDGE_BAND, kappa=EDGE_RATE, rtol=1e-10,
         atol=1e-12, method="DOP853", max_evals=200_000):
    """Central flow (``edge=True``) or gradient flow of any quadratic model, as plain arrays.

    The array-level integrator behind :func:`eosdyn.qrm.central_flow`, for any
    ``f(θ) = z₀ + J₀θ + ½Q(θ,θ)`` (the one-datapoint model, the reduced Taylor model of
    :func:`eosdyn.taylor.reduced_model`): :func:`central_velocity` integrated from ``theta0``
    (default 0) with :func:`eosdyn.kernels.integrate.solve_batch`, time in GD steps.

    Returns a dict: ``theta`` (k × P samples, NaN after a stop), ``status`` (a
    :data:`eosdyn.conventions.STATUS_VALUES` code: ``max_steps``, ``diverged`` or ``failed``),
    ``t_stop``, and per sample ``loss``, ``hessian_sharpness`` (η λ_max(H)) and ``predicted_loss``
    (L + ½⟨Σ, H⟩).

    Examples
    --------
    >>> Q = np.zeros((1, 2, 2)); J0 = np.array([[1.0, 0.0]]); z0 = np.array([1.0])
    >>> out = flow(Q, J0, z0, 0.5, [0.0, 2.0], edge=False)   # linear model: z(t) = z0 exp(-eta |J|^2 t)
    >>> bool(abs(out["loss"][1] - 0.5 * np.exp(-2.0)) < 1e-9), int(out["status"])
    (True, 3)
    """
    from .integrate import solve_batch

    Q = _check_q(Q)
    D, P, _ = Q.shape
    J0 = _arr("J0", J0, 2)
    z0 = _arr("z0", z0, 1)
    if J0.shape != (D, P) or z0.shape != (D,):
        raise ValueError(f"J0 must have shape {(D, P)} and z0 shape {(D,)} to match Q; got {J0.shape}, {z0.shape}")
    eta = _check_eta(eta)
    theta0 = np.zeros(P) if theta0 is None else _check_vec("theta0", theta0, P)
    if not isinstance(edge, (bool, np.bool_)):
        raise TypeError(f"edge must be True or False; got {edge!r}")
    band, kappa = _check_band_kappa(band, kappa)
    args = [(Q, J0, z0, eta, bool(edge), band, kappa)]
    Y, st, ts = solve_batch(_flow_rhs, theta0[None], times, args, rtol=rtol, atol=atol, method=method,
                            max_evals=max_evals)
    Y = Y[0]
    k = Y.shape[0]
    out = {"theta": Y, "status": int(st[0]), "t_stop": float(ts[0]), "loss": np.full(k, np.nan),
           "hessian_sharpness": np.full(k, np.nan), "predicted_loss": np.full(k, np.nan)}
    for j in range(k):
        if np.all(np.isfinite(Y[j])):
            o = flow_observables(Q, J0, z0, Y[j], eta, band, kappa, bool(edge))
            for name in ("loss", "hessian_sharpness", "predicted_loss"):
                out[name][j] = o[name]
    return out


def _check_band_kappa(band, kappa) -> tuple[float, float]:
    """``band`` in [0, 2) and ``kappa`` ≥ 0, as floats (the central flow's edge options)."""
    for name, v in (("band", band), ("kappa", kappa)):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise TypeError(f"{name} must be a real number; got {v!r}")
    if not (np.isfinite(band) and 0 <= band < 2):
        raise ValueError(f"band must be finite and in [0, 2); got {band!r}")
    if not (np.isfinite(kappa) and kappa >= 0):
        raise ValueError(f"kappa must be finite and in [0, inf); got {kappa!r}")
    return float(band), float(kappa)


def flow_observables(Q, J0, z0, theta, eta, band=EDGE_BAND, kappa=EDGE_RATE, edge=True) -> dict:
    """What a central flow records at one state θ of ``f(θ) = z₀ + J₀θ + ½Q(θ,θ)``.

    ``loss`` ½‖z‖², ``hessian_sharpness`` η λ_max(H), ``predicted_loss`` L + ½⟨Σ, H⟩ (the
    predicted time-averaged GD loss) and ``oscillation_variance`` tr Σ, with Σ = U X Uᵀ of
    :func:`central_velocity` (0 below the edge or with ``edge=False``).

    Examples
    --------
    >>> Q = np.zeros((1, 2, 2)); J0 = np.array([[2.0, 0.0]]); z0 = np.array([1.0])
    >>> o = flow_observables(Q, J0, z0, [0.0, 0.0], 0.25)     # H = J0ᵀJ0: λ_max = 4, η λ = 1
    >>> o["loss"], o["hessian_sharpness"], o["oscillation_variance"]
    (0.5, 1.0, 0.0)
    """
    Q = _check_q(Q)
    D, P, _ = Q.shape
    J0, z0 = _arr("J0", J0, 2), _arr("z0", z0, 1)
    theta = _check_vec("theta", theta, P)
    if J0.shape != (D, P) or z0.shape != (D,):
        raise ValueError(f"J0 must have shape {(D, P)} and z0 shape {(D,)} to match Q; got {J0.shape}, {z0.shape}")
    eta = _check_eta(eta)
    band, kappa = _check_band_kappa(band, kappa)
    z, J = _state(Q, J0, z0, theta)
    H = _hessian(Q, J, z)
    L = 0.5 * float(z @ z)
    _, X, U, _, _, _ = _central(Q, J, z, eta, band, kappa, bool(edge))
    return {"loss": L, "hessian_sharpness": eta * float(_top(H, 1)[0][0]),
            "predicted_loss": L + (0.5 * float(np.sum(X * (U.T @ H @ U))) if X.size else 0.0),
            "oscillation_variance": float(np.trace(X)) if X.size else 0.0}
