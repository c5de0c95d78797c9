"""Second-order structure of the network at a step t₀ (Section 5, Figure 6, Appendix D.3).

At parameters θ(t₀) with residual z and Jacobian J (never formed):

* top-``k`` NTK eigenpairs ``J Jᵀ v_i = λ_i v_i`` (Lanczos, refined by warm LOBPCG);
* parameter directions ``u_i = Jᵀ v_i / √λ_i`` (orthonormal, ``J u_i = √λ_i v_i``);
* reduced tensor ``Q̃_ijl = v_i · Q(u_j, u_l)`` with ``Q(u, w) = ∂²f[u, w]``
  (forward-over-forward ``jvp``);
* extreme eigenvalues (both ends) of ``Q₁ = v₁ · Q``, the Hessian of ``v₁ᵀ f``
  (Lanczos with Hessian-vector products), and of ``w · Q`` for a random unit ``w``;
* ``z̃ = Vᵀ z``;
* optionally (``feedback=r``) *feedback directions* ``w_f``: the orthonormalised parts of the
  Hessian-vector products ``Q_i u_j = ∇²(v_iᵀ f) u_j`` (i, j < r) outside span(u), with
  ``v_i · Q(u_j, w_f)`` and ``v_i · Q(w_f, w_g)``. A parameter step along u₁ moves J along
  ``Q₁ u₁``, and most of ``‖Q₁ u₁‖²`` lies outside span(u₁…u_k); the curvature feedback that
  ends a catapult (λ₁ falling ∝ z₁² ‖Q₁ u₁‖²) needs those directions.

With these, ``z(θ(t₀) + U φ) ≈ z̃ + diag(√λ) φ + ½ Q̃(φ, φ)`` in the basis V: the
k-mode quadratic (Taylor) model of :mod:`eosdyn.models.taylor`.
"""

from __future__ import annotations

import numpy as np
import torch

from .linalg import lanczos, lobpcg
from .network import NetworkOps, numpy_operator


def top_ntk_eigenpairs(ops: NetworkOps, theta, *, k: int, rng, lanczos_m: int = 80, warm=None,
                       refine_iters: int = 3, vjp_fn=None):
    """Top-``k`` NTK eigenpairs: Lanczos, then a few LOBPCG iterations started from the Ritz vectors.

    Returns ``(eigenvalues (k,), V (N, k), residuals (k,), matvecs)``.
    """
    if vjp_fn is None:
        with torch.no_grad():
            _, vjp_fn = ops.linearize(theta)
    op = numpy_operator(lambda V: ops.ntk_matvec(theta, V, vjp_fn), ops.dtype)
    N = ops.n_outputs
    v0 = None
    if warm is not None:
        v0 = np.asarray(warm, np.float64)[:, 0] + 1e-3 * rng.standard_normal(N) / np.sqrt(N)
    lz = lanczos(op, N, m=lanczos_m, rng=rng, v0=v0, return_vectors=k + 4)
    res = lobpcg(op, N, k=k, block=min(k + 4, N), X0=lz.vectors, rng=rng, tol=1e-6, maxiter=refine_iters)
    return res.eigenvalues, res.vectors, res.residuals, lz.matvecs + res.matvecs


def _projected_pairs(ops: NetworkOps, theta, A, B, pairs, Vd, pair_chunk: int) -> np.ndarray:
    """``Vᵀ Q(a_j, b_l)`` for the index pairs ``(j, l)`` of the blocks ``A``, ``B`` → (k, len(pairs))."""
    out = np.zeros((Vd.shape[1], len(pairs)))
    for s in range(0, len(pairs), pair_chunk):
        chunk = pairs[s:s + pair_chunk]
        jj = torch.tensor([p[0] for p in chunk]); ll = torch.tensor([p[1] for p in chunk])
        with torch.no_grad():
            d2 = ops.second_derivative(theta, A[jj], B[ll]).to(torch.float64)  # (c, N)
        out[:, s:s + len(chunk)] = (Vd.T @ d2.T).numpy()
    return out


def feedback_directions(ops: NetworkOps, theta, V, U, r: int, rtol: float = 1e-6):
    """Orthonormal parameter directions outside span(U) along which J moves when θ moves along u_j.

    The Hessian-vector products ``Q_i u_j`` (i, j < r; ``Q_i`` = Hessian of ``v_iᵀ f``) are projected
    off span(U) (twice) and orthonormalised by modified Gram–Schmidt, dropping directions with a norm
    below ``rtol`` × the largest.

    Returns ``(W (m, P) float64, sources [(i, j), ...], outside (r, r))`` where ``outside[i, j]`` is the
    fraction of ``‖Q_i u_j‖²`` outside span(U).
    """
    Ud = U.to(torch.float64)
    raw, sources = [], []
    for i in range(r):
        vi = torch.from_numpy(np.ascontiguousarray(V[:, i])).to(ops.dtype)
        with torch.no_grad():
            H = ops.hvp(theta, vi, U[:r]).to(torch.float64)  # rows Q_i u_j
        raw.extend(H)
        sources.extend((i, j) for j in range(r))
    R = torch.stack(raw)
    total = R.norm(dim=1)
    for _ in range(2):
        R = R - (R @ Ud.T) @ Ud
    outside = ((R.norm(dim=1) / total) ** 2).numpy().reshape(r, r)
    W, kept = [], []
    big = float(R.norm(dim=1).max())
    for row, src in zip(R, sources):
        w = row.clone()
        for _ in range(2):
            for q in W:
                w = w - (q @ w) * q
            w = w - (w @ Ud.T) @ Ud
        nw = float(w.norm())
        if nw > rtol * big:
            W.append(w / nw)
            kept.append(src)
    return torch.stack(W), kept, outside


def flip_mode(p: dict, i: int) -> dict:
    """Change the sign of NTK mode ``i`` (v_i → −v_i, u_i → −u_i) in a projections dict, in place.

    An exact symmetry of the reduced model: ``z̃_i``, the output index ``i`` and the parameter index
    ``i`` of ``Q_tilde`` (and of ``Q_cross``; ``Q_feedback``'s output index) change sign. For ``i = 0``
    Q₁ = ∇²(v₁ᵀf) becomes −Q₁: its extremes ``q1_eig`` (largest first … smallest) become
    ``−q1_eig[::-1]``.
    """
    p["z_tilde"][i] *= -1
    if i == 0:
        for key in ("q1_eig", "q1_residual"):
            if key in p:
                p[key] = (-1 if key == "q1_eig" else 1) * np.asarray(p[key])[::-1].copy()
    Q = p["Q_tilde"]
    Q[i] *= -1
    Q[:, i, :] *= -1
    Q[:, :, i] *= -1
    if "Q_cross" in p:
        p["Q_cross"][i] *= -1
        p["Q_cross"][:, i, :] *= -1
        p["Q_feedback"][i] *= -1
    return p


def hessian_extremes(ops: NetworkOps, theta, w, *, m: int, n_extreme: int, rng):
    """Extreme Ritz values of the Hessian of ``wᵀ f`` (= ``w · Q``) by Lanczos with Hessian-vector products.

    Returns ``(values (2 n_extreme,), residual estimates |β_m s_m| / |θ| (2 n_extreme,), matvecs)``:
    the ``n_extreme`` largest then the ``n_extreme`` smallest, descending. Top Ritz values are lower
    bounds of the top eigenvalues (bottom ones upper bounds of the bottom eigenvalues).
    """
    wt = torch.from_numpy(np.ascontiguousarray(w)).to(ops.dtype)
    op = numpy_operator(lambda X: ops.hvp(theta, wt, X), ops.dtype)
    r = lanczos(op, ops.n_params, m=m, rng=rng)
    idx = np.r_[0:n_extreme, len(r.eigenvalues) - n_extreme:len(r.eigenvalues)]
    return r.eigenvalues[idx], r.residuals[idx], r.matvecs


def output_hessian_spectra(ops: NetworkOps, theta, v1, *, m: int, n_extreme: int, rng) -> dict:
    """Figure 6 (left): extremes of Q₁ = ∇²(v₁ᵀf) and, for contrast, of ∇²(wᵀf) for a random unit w."""
    q1, q1r, m1 = hessian_extremes(ops, theta, v1, m=m, n_extreme=n_extreme, rng=rng)
    w = rng.standard_normal(len(v1))
    w /= np.linalg.norm(w)
    qr, qrr, m2 = hessian_extremes(ops, theta, w, m=m, n_extreme=n_extreme, rng=rng)
    return {"q1_eig": q1, "q1_residual": q1r, "qrand_eig": qr, "qrand_residual": qrr,
            "hvps_q1": int(m1), "hvps_qrand": int(m2)}


def compute_projections(ops: NetworkOps, theta, *, eta: float, k: int = 16, rng=None, ntk_lanczos_m: int = 80,
                        q1_lanczos_m: int = 40, n_extreme: int = 5, warm=None, pair_chunk: int = 8,
                        feedback: int = 0) -> dict:
    """All t₀ quantities as plain numpy arrays (float64).

    Parameters
    ----------
    ops : NetworkOps
    theta : torch.Tensor
        Flat parameters at t₀.
    eta : float
        Learning rate (sharpness = η λ / n).
    k : int
        Number of modes.
    rng : numpy.random.Generator
    ntk_lanczos_m, q1_lanczos_m : int
        Krylov sizes for the NTK and for Q₁ / the random projection.
    n_extreme : int
        Number of eigenvalues kept at each end of the spectra of Q₁ and of the random projection.
    warm : ndarray, optional
        Tracking block (N, b) used to start Lanczos.
    pair_chunk : int
        Pairs (j, l) per vmapped second-derivative call.
    feedback : int, default 0
        ``r``: add the feedback directions from ``Q_i u_j``, i, j < r (:func:`feedback_directions`;
        up to r² directions), with ``Q_cross (k, k, m)`` = ``v_i · Q(u_j, w_f)`` and
        ``Q_feedback (k, m, m)`` = ``v_i · Q(w_f, w_g)``.

    Returns
    -------
    dict
        ``lam (k,)``, ``ntk_residual (k,)``, ``z_tilde (k,)``, ``Q_tilde (k, k, k)``, ``q1_eig (2 n_extreme,)``
        (largest first, then the smallest ascending… stored descending overall), ``qrand_eig``, ``loss``,
        ``matvecs``, ``u_orthogonality`` (max |UᵀU − I|); with ``feedback``: ``Q_cross``, ``Q_feedback``,
        ``feedback_sources (m, 2)``, ``q1u1_outside`` (fraction of ‖Q₁u₁‖² outside span(u)).

    Examples
    --------
    >>> import torch, numpy as np
    >>> from eosdyn.nn.network import make_network, NetworkOps
    >>> net = make_network(in_features=3, width=4, out_features=2, seed=1, dtype=torch.float64)
    >>> g = torch.Generator().manual_seed(0)
    >>> ops = NetworkOps(net, torch.randn(6, 3, generator=g, dtype=torch.float64),
    ...                  torch.zeros(6, 2, dtype=torch.float64))
    >>> p = compute_projections(ops, ops.theta0(), eta=0.1, k=3, rng=np.random.default_rng(0),
    ...                         ntk_lanczos_m=12, q1_lanczos_m=10, n_extreme=2)
    >>> p["Q_tilde"].shape, bool(np.allclose(p["Q_tilde"], p["Q_tilde"].transpose(0, 2, 1)))
    ((3, 3, 3), True)
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    with torch.no_grad():
        z, vjp_fn = ops.linearize(theta)
    lam, V, resid, nmv = top_ntk_eigenpairs(ops, theta, k=k, rng=rng, lanczos_m=ntk_lanczos_m, warm=warm,
                                            vjp_fn=vjp_fn)
    zn = z.detach().to(torch.float64).numpy()
    # sign convention: z̃_i >= 0 is not meaningful; keep v_1 aligned with the warm block if given
    if warm is not None and float(V[:, 0] @ np.asarray(warm, np.float64)[:, 0]) < 0:
        V[:, 0] *= -1
    Vt = torch.from_numpy(np.ascontiguousarray(V.T)).to(ops.dtype)
    with torch.no_grad():
        U = torch.stack([vjp_fn(v) for v in Vt]).to(torch.float64)
    U = U / torch.from_numpy(np.sqrt(lam))[:, None]
    gram = (U @ U.T).numpy()
    U = U.to(ops.dtype)
    pairs = [(j, l) for j in range(k) for l in range(j, k)]
    Qt = np.zeros((k, k, k))
    Vd = torch.from_numpy(V)
    proj = _projected_pairs(ops, theta, U, U, pairs, Vd, pair_chunk)
    for c, (j, l) in enumerate(pairs):
        Qt[:, j, l] = proj[:, c]
        Qt[:, l, j] = proj[:, c]
    extra = {}
    if feedback:
        W, sources, outside = feedback_directions(ops, theta, V, U, min(int(feedback), k))
        m = W.shape[0]
        Wt = W.to(ops.dtype)
        cross = [(j, f) for j in range(k) for f in range(m)]
        Qc = _projected_pairs(ops, theta, U, Wt, cross, Vd, pair_chunk).reshape(k, k, m)
        wpairs = [(f, g) for f in range(m) for g in range(f, m)]
        pw = _projected_pairs(ops, theta, Wt, Wt, wpairs, Vd, pair_chunk)
        Qw = np.zeros((k, m, m))
        for c, (f, g) in enumerate(wpairs):
            Qw[:, f, g] = pw[:, c]
            Qw[:, g, f] = pw[:, c]
        extra = {"Q_cross": Qc, "Q_feedback": Qw, "feedback_sources": np.asarray(sources, np.int64).reshape(-1, 2),
                 "q1u1_outside": float(outside[0, 0]),
                 "w_orthogonality": float(np.abs(np.vstack([(W @ W.T).numpy() - np.eye(m),
                                                            (W @ U.to(torch.float64).T).numpy().T])).max())}
    spectra = output_hessian_spectra(ops, theta, V[:, 0], m=q1_lanczos_m, n_extreme=n_extreme, rng=rng)
    m1, m2 = spectra.pop("hvps_q1"), spectra.pop("hvps_qrand")
    return {
        "lam": lam, "ntk_residual": resid, "z_tilde": V.T @ zn, "Q_tilde": Qt, **spectra,
        "loss": float(0.5 * zn @ zn / ops.n), "matvecs": int(nmv), "hvps": int(m1 + m2),
        "u_orthogonality": float(np.abs(gram - np.eye(k)).max()), "eta": float(eta), "n": int(ops.n),
        **extra,
    }
