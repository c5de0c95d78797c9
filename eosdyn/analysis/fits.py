"""Attractor fits: tail classification, geometric limit fits, two-step increment regressions.

All functions lift array kernels (:mod:`eosdyn.analysis._kernels`) over every non-core dim with
``xarray.apply_ufunc`` (``vectorize=False``, ``dask="parallelized"``): no Python loop over members.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np
import xarray as xr

from ..conventions import set_variable_attrs
from . import _kernels as K
from ._common import (XArray, attach, check_bool, check_dim, check_dims, check_integer, check_nonempty,
                      check_real, check_real_data, check_real_dtype, check_xarray, dataset_edge, flat_rows,
                      lift, numeric_vars, regular_stride, role_var, status_is, step_values)
from .coords import _method, _top_mode, eos_coordinate
from .twostep import _pair_views, two_step_pairs

__all__ = ["classify", "fit_limit", "limiting_two_cycle", "fit_increments", "ATTRACTOR_VALUES"]

ATTRACTOR_VALUES = K.ATTRACTOR_VALUES


# ============================================================================ classify
def _classify_kernel(a, ends, tail, rtol, atol):
    rows, lead = flat_rows(a)
    ends = np.ascontiguousarray(np.broadcast_to(ends, lead), dtype=np.int64).reshape(-1)
    return K.classify_rows(np.ascontiguousarray(rows), ends, tail, rtol, atol).reshape(lead)


def _record_ends(ds: xr.Dataset, dim, with_status: bool = True) -> xr.DataArray | None:
    """Per member: number of recorded steps <= ``steps_taken``, −1 where ``status`` says diverged."""
    ends = None
    if "steps_taken" in ds and dim not in ds["steps_taken"].dims:
        steps = step_values(ds, dim)
        st = ds["steps_taken"]
        # steps_taken counts GD steps from the first recorded (initial) step: step 0 for toy/QRM,
        # t0 for the Taylor model
        if st.dtype.kind not in "iuf":
            raise TypeError(f"the variable 'steps_taken' must hold numbers; got dtype {st.dtype}")
        from .stats import _ends_kernel

        ends = lift(_ends_kernel, st, core_dims=[[]], out_core_dims=[[]], out_dtypes=[np.int64],
                    kwargs={"steps": steps})
    if with_status and "status" in ds and dim not in ds["status"].dims:
        div = status_is(ds["status"], "diverged")
        base = ends if ends is not None else xr.full_like(div, ds.sizes[dim], dtype=np.int64)
        ends = xr.where(div, -1, base)
    return ends


def _default_rtol(dtype) -> float:
    return max(1e-6, 100 * float(np.finfo(np.dtype(dtype) if np.dtype(dtype).kind == "f" else np.float64).eps))


def _flag(codes: xr.DataArray, as_strings: bool) -> xr.DataArray:
    codes = codes.astype(np.int8)
    codes.attrs = {}
    codes = attach(codes, "attractor")
    codes.attrs["flag_values"] = np.array(list(ATTRACTOR_VALUES.values()), dtype=np.int8)
    codes.attrs["flag_meanings"] = " ".join(ATTRACTOR_VALUES)
    if as_strings:
        names = np.array(list(ATTRACTOR_VALUES), dtype=object)
        out = xr.apply_ufunc(lambda c: np.asarray(names[c]).astype("U11"), codes, dask="parallelized",
                             output_dtypes=[np.dtype("U11")])
        out.attrs = {"long_name": codes.attrs["long_name"]}
        return out.rename("attractor")
    return codes


def classify(x: XArray, dim: Hashable = "step", *, tail: int | None = None, rtol: float | None = None,
             atol: float = 0.0, variables: Sequence[Hashable] | None = None,
             as_strings: bool = False) -> xr.DataArray:
    """Classify the tail of every trajectory: ``fixed_point``, ``period_2``, ``other``, ``diverged``.

    Rule, per member and variable (``scale`` = max abs(x) over the finite values of the first
    recorded value and the tail, ``tol = rtol * scale + atol``; only these values are read):

    1. ``diverged`` if the series *ends* in NaN or ±inf;
    2. ``fixed_point`` if every one-step change abs(x[t+1] − x[t]) in the last ``tail`` steps is <= tol;
    3. ``period_2`` if every two-step change abs(x[t+2] − x[t]) in the tail is <= tol;
    4. ``other`` otherwise (quasi-periodic, chaotic, or still converging: "unsettled").

    For a Dataset the label of a member combines its variables (default: every float variable
    with ``dim``): ``diverged`` if any variable diverged, else ``other`` if any is ``other``, else
    ``period_2`` if any is ``period_2``, else ``fixed_point``. If the Dataset has ``steps_taken``
    (runs stopped early and NaN-padded, as QRM sweeps), each member's tail ends at its last
    recorded step <= ``steps_taken``; if it has a CF ``status`` flag, members flagged
    ``diverged`` are ``diverged``.

    Parameters
    ----------
    x : xarray.DataArray or xarray.Dataset
    dim : str, default "step"
        The step dim; the tail must be recorded with stride 1 (consecutive steps).
    tail : int, optional
        Number of final recorded steps examined, in [3, n]; default ``min(n, max(10, n // 10))``
        with n the number of recorded steps of the member.
    rtol, atol : float
        Tolerances, finite and >= 0; ``rtol`` defaults to ``max(1e-6, 100 * machine epsilon of
        the dtype)``. NaN, inf, negative values or strings are refused (a NaN tolerance would make
        every comparison fail).
    variables : list of str, optional
        Dataset variables to combine.
    as_strings : bool, default False
        Return the labels as strings instead of the CF flag variable.

    Raises
    ------
    ValueError
        A missing ``dim``, fewer than 4 steps, a tail not recorded with stride 1, a
        non-increasing step coordinate, or an option out of range (named in the message).
    TypeError
        Complex or non-numeric series; options of the wrong type (e.g. a string tolerance).

    Returns
    -------
    xarray.DataArray
        ``attractor``: an int8 CF flag variable (``flag_values`` 0..3, ``flag_meanings``
        "fixed_point period_2 other diverged"; decode with
        :func:`eosdyn.conventions.decode_status`) or strings, with the input's other dims.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> t = np.arange(40)
    >>> x = xr.DataArray(np.stack([1 + 0.5 ** t, 1 + (-1.0) ** t, 2.0 ** t]), dims=("member", "step"))
    >>> classify(x, as_strings=True).values.tolist()
    ['fixed_point', 'period_2', 'other']
    """
    check_xarray(x)
    check_dim(x, dim)
    rtol = check_real("rtol", rtol, 0, allow_none=True)
    atol = check_real("atol", atol, 0)
    as_strings = check_bool("as_strings", as_strings)
    if isinstance(x, xr.DataArray):
        check_real_dtype(x.dtype, "x", "iuf")
    else:
        check_real_data(x, "x", dim)
    n = x.sizes[dim]
    if n < 4:
        raise ValueError(f"classify needs at least 4 recorded steps along {dim!r}; got {n}")
    if tail is not None:
        tail = check_integer("tail", tail, 3, n)
    tl = min(n, max(10, n // 10)) if tail is None else tail
    steps = step_values(x, dim)[n - tl:]
    stride = regular_stride(steps, dim, "classify")
    if stride != 1:
        raise ValueError(f"classify needs consecutive steps (stride 1) in the tail along {dim!r}; "
                         f"got stride {stride}")
    tail = 0 if tail is None else tail
    if isinstance(x, xr.Dataset):
        if variables is None:
            names = numeric_vars(x, dim, "f")
        elif isinstance(variables, str):
            names = [variables]
        else:
            try:
                names = list(variables)
            except TypeError:
                raise TypeError(f"variables must be a sequence of variable names; got {variables!r}") from None
        missing = [v for v in names if not isinstance(v, Hashable) or v not in x.data_vars
                   or dim not in x[v].dims]
        if missing or not names:
            raise ValueError(f"variables {missing or names} are not float variables with dim {dim!r}")
        for v in names:
            check_real_dtype(x[v].dtype, f"x[{v!r}]", "iuf")
        ends = _record_ends(x, dim)
        codes = [_classify_da(x[v], dim, tail, rtol, atol, ends) for v in names]
        # severity order: fixed_point < period_2 < other < diverged, so the max combines them
        combined = codes[0]
        for c in codes[1:]:
            combined = np.maximum(combined, c)
        return _flag(combined, as_strings)
    return _flag(_classify_da(x, dim, tail, rtol, atol, None), as_strings)


def _classify_da(x: xr.DataArray, dim, tail, rtol, atol, ends) -> xr.DataArray:
    check_real_dtype(x.dtype, f"x[{x.name!r}]" if ends is not None else "x", "iuf")
    rtol = _default_rtol(x.dtype) if rtol is None else float(rtol)
    xf = x if x.dtype.kind == "f" else x.astype(np.float64)
    if ends is None:
        ends = xr.DataArray(np.int64(x.sizes[dim]))
    return lift(_classify_kernel, xf, ends, core_dims=[[dim], []], out_core_dims=[[]], out_dtypes=[np.int8],
                kwargs={"tail": tail, "rtol": rtol, "atol": float(atol)})


# ============================================================================ fit_limit
def _geom_kernel(a, ends, bidx, tail, default_tail, min_points, max_iter, spacing):
    rows, lead = flat_rows(a)
    end_pos = np.broadcast_to(ends, lead).reshape(-1).astype(np.int64)
    e_b = np.searchsorted(bidx, end_pos, side="left")
    if tail is not None:
        t_r = np.full_like(end_pos, tail)
    elif default_tail:
        t_r = np.maximum(16, end_pos // 2)
    else:
        t_r = end_pos + 1
    s_b = np.searchsorted(bidx, end_pos - t_r, side="left")
    L, c, r, rms, Lse, rse, npts = K.geometric_fit_rows(np.ascontiguousarray(rows, dtype=np.float64),
                                                        s_b.astype(np.int64), e_b.astype(np.int64),
                                                        min_points, max_iter)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.abs(r) ** (1.0 / spacing)
        rate_se = np.where(rse == 0, 0.0, rate / (spacing * np.abs(r)) * rse)
        rate_se = np.where(np.isinf(rate_se), np.nan, rate_se)   # r = 0: |r|^(1/Δ) not differentiable
    return tuple(o.reshape(lead) for o in (L, c, r, rms, Lse, rate, rate_se, npts))




_BIG = 2**62


def _fit_options(tail, start, stop, max_iter, min_points):
    """Validate the window and iteration options of :func:`fit_limit` (before any data work)."""
    tail = check_integer("tail", tail, 1, _BIG, allow_none=True)
    start = check_integer("start", start, -_BIG, _BIG, allow_none=True)
    stop = check_integer("stop", stop, -_BIG, _BIG, allow_none=True)
    if start is not None and stop is not None and start > stop:
        raise ValueError(f"start must be <= stop (a window of step values); got start={start}, stop={stop}")
    max_iter = check_integer("max_iter", max_iter, 0, MAX_ITER)
    min_points = check_integer("min_points", min_points, 4, _BIG)
    return tail, start, stop, max_iter, min_points


#: most Gauss-Newton iterations fit_limit accepts
MAX_ITER = 100_000


def _fit_one(x: xr.DataArray, dim, tail, start, stop, max_iter, min_points, ends=None,
             label: str = "x") -> xr.Dataset:
    check_real_dtype(x.dtype, label, "biuf")
    check_nonempty(x, dim, "fit_limit")
    steps = step_values(x, dim)
    n = steps.size
    sel = np.ones(n, bool)
    if start is not None:
        sel &= steps >= start
    if stop is not None:
        sel &= steps <= stop
    default_tail = tail is None and start is None
    if ends is None:
        ends = xr.DataArray(np.int64(n))
    branches = []
    for parity in (0, 1):
        bidx = np.flatnonzero(sel & (steps % 2 == parity))
        if bidx.size == 0:
            branches.append(None)
            continue
        t_full = tail if tail is not None else (max(16, n // 2) if default_tail else n + 1)
        avail = bidx.size - np.searchsorted(bidx, n - t_full, side="left")
        if avail < min_points:
            raise ValueError(f"too few steps to fit along {dim!r}: the {'even' if parity == 0 else 'odd'} "
                             f"branch of the window has {avail} points, at least {min_points} "
                             "are needed (increase tail or widen start/stop)")
        spacing = regular_stride(steps[bidx], dim, "fit_limit")
        xb = x.isel({dim: bidx})
        L, c, r, rms, Lse, rate, rate_se, npts = lift(
            _geom_kernel, xb, ends, core_dims=[[dim], []], out_core_dims=[[]] * 8,
            out_dtypes=[np.float64] * 7 + [np.int64],
            kwargs={"bidx": bidx, "tail": tail, "default_tail": default_tail, "min_points": int(min_points),
                    "max_iter": int(max_iter), "spacing": spacing})
        branches.append(xr.Dataset({"limit": L, "limit_se": Lse, "rate": rate, "rate_se": rate_se,
                                    "ratio": r, "amplitude": c, "residual": rms, "n_points": npts}))
    if all(b is None for b in branches):
        raise ValueError(f"too few steps to fit along {dim!r}: the window is empty")
    template = next(b for b in branches if b is not None)
    empty = template.copy()
    for k in empty.data_vars:
        empty[k] = xr.zeros_like(template[k]) if k == "n_points" else xr.full_like(template[k], np.nan)
    filled = [b if b is not None else empty for b in branches]
    out = xr.concat(filled, dim=xr.DataArray(["even", "odd"], dims="branch", name="branch"),
                    coords="minimal", compat="override", join="outer")
    even_, odd_ = out.sel(branch="even"), out.sel(branch="odd")
    out["cycle_mean"] = (even_.limit + odd_.limit) / 2
    out["cycle_mean_se"] = np.hypot(even_.limit_se, odd_.limit_se) / 2
    out["cycle_half_amplitude"] = abs(even_.limit - odd_.limit) / 2
    out["cycle_half_amplitude_se"] = out["cycle_mean_se"]
    return _labelled(out)


def _labelled(out: xr.Dataset, **attrs) -> xr.Dataset:
    """CF labels of every result variable from :data:`eosdyn.conventions.VARIABLES`."""
    for k in out.variables:
        set_variable_attrs(out[k], k, overwrite=True)
    out.attrs.update(attrs)
    return out


def fit_limit(x: XArray, dim: Hashable = "step", *, tail: int | None = None, start: int | None = None,
              stop: int | None = None, max_iter: int = 50, min_points: int = 4) -> xr.Dataset:
    """Geometric tail fit x_t ≈ x∞ + c ρ^t, separately on even and odd steps.

    On each parity branch the points u_k of the window are fitted by non-linear least squares
    u_k ≈ x∞ + c r^k (start: the increment ratio r₀ = Σ d_k d_{k+1} / Σ d_k², then damped
    Gauss-Newton); ``rate`` = abs(r)^{1/Δ} is the contraction per GD step (Δ = step spacing in the
    branch, 2 for stride-1 recordings). A fixed point gives equal branch limits; a period-2
    orbit gives the two branch values, summarised as ``cycle_mean`` and ``cycle_half_amplitude``.

    Parameters
    ----------
    x : xarray.DataArray or xarray.Dataset
        Series with a step dim. For a Dataset every float variable with ``dim`` is fitted and the
        outputs are prefixed ``<var>_``.
    dim : str, default "step"
    tail : int, optional
        Use only the last ``tail`` recorded points of the window. Default: the last half of the
        series (at least 16 points) when ``start`` is not given, else everything from ``start``.
        For a Dataset with ``steps_taken`` (early-stopped, NaN-padded runs) the window of each
        member ends at its last recorded step <= steps_taken (and the default tail is half of
        that member's record); a member with too few points there gets NaN.
    start, stop : int, optional
        Restrict the window to ``start <= step <= stop`` (step values); ``start > stop`` is refused.
    max_iter : int, default 50
        Gauss-Newton iterations, in [0, 100000].
    min_points : int, default 4
        Minimum points per branch (3 parameters plus one for the error estimate), >= 4.

    Returns
    -------
    xarray.Dataset
        With dim ``branch`` ("even", "odd"): ``limit``, ``limit_se`` (from s² (JᵀJ)⁻¹), ``rate``,
        ``rate_se``, ``ratio``, ``amplitude``, ``residual`` (RMS), ``n_points``; and
        ``cycle_mean``, ``cycle_mean_se``, ``cycle_half_amplitude``, ``cycle_half_amplitude_se``.
        A branch with a non-finite value in the window, or that does not converge (abs(r) >= 1),
        has NaN limit. A branch absent from the recording (stride 2) is NaN.

    Raises
    ------
    ValueError
        Missing or empty dim, a non-increasing step coordinate, irregular steps in a branch,
        fewer than ``min_points`` points per branch, or an option out of range (named).
    TypeError
        Complex or non-numeric series; options of the wrong type (e.g. ``max_iter="50"``).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> t = np.arange(60)
    >>> x = xr.DataArray(2.0 + 0.3 * (-1.0) ** t + 0.5 * 0.9 ** t, dims="step")
    >>> f = fit_limit(x)
    >>> np.round(f.limit.values, 6).tolist(), round(float(f.rate.sel(branch="even")), 6)
    ([2.3, 1.7], 0.9)
    """
    check_xarray(x)
    check_dim(x, dim)
    tail, start, stop, max_iter, min_points = _fit_options(tail, start, stop, max_iter, min_points)
    check_real_data(x, "x", dim)
    check_nonempty(x, dim, "fit_limit")
    if isinstance(x, xr.Dataset):
        names = numeric_vars(x, dim, "f")
        if not names:
            raise ValueError(f"the dataset has no float variable with dim {dim!r} to fit")
        ends = _record_ends(x, dim, with_status=False)
        parts = []
        for v in names:
            f = _fit_one(x[v], dim, tail, start, stop, max_iter, min_points, ends, f"x[{v!r}]")
            parts.append(f.rename({k: f"{v}_{k}" for k in f.data_vars}))
        return xr.merge(parts, compat="override", join="outer")
    return _fit_one(x, dim, tail, start, stop, max_iter, min_points)


def limiting_two_cycle(x: XArray, dim: Hashable = "step", *, edge: float | None = None,
                       **kwargs) -> xr.Dataset:
    """Limiting two-cycle of a sharpness series: ``cycle_mean``, ``half_amplitude``, ``deviation`` = edge − mean.

    ``x`` is a sharpness DataArray or a dataset holding one (the variable with role
    ``sharpness``; mode 0 of a ``mode`` dim is used). The branch limits come from
    :func:`fit_limit` (keyword arguments ``tail``, ``start``, ``stop``, ``max_iter``,
    ``min_points`` are passed on and validated as there). ``edge`` (finite) defaults to the
    dataset's ``edge`` coordinate, else 2.
    An empty ``step`` dim, complex data or a bad option raise before any fitting.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> t = np.arange(80)
    >>> s = xr.DataArray(1.95 + 0.1 * (-1.0) ** t * (1 + 0.8 ** t), dims="step", name="sharpness")
    >>> c = limiting_two_cycle(s)
    >>> round(float(c.cycle_mean), 6), round(float(c.half_amplitude), 6), round(float(c.deviation), 6)
    (1.95, 0.1, 0.05)
    """
    check_xarray(x)
    check_dim(x, dim)
    edge = dataset_edge(x, edge)
    opts = _fit_options(kwargs.pop("tail", None), kwargs.pop("start", None), kwargs.pop("stop", None),
                        kwargs.pop("max_iter", 50), kwargs.pop("min_points", 4))
    if kwargs:
        raise TypeError(f"limiting_two_cycle got unknown keyword arguments {sorted(kwargs)}; it accepts "
                        "edge, tail, start, stop, max_iter, min_points")
    ends = None
    label = "x"
    if isinstance(x, xr.Dataset):
        s = role_var(x, "sharpness", what="limiting_two_cycle")
        label = f"x[{s.name!r}]"
        check_real_dtype(s.dtype, label, "biuf")
        check_nonempty(x, dim, "limiting_two_cycle")
        ends = _record_ends(x, dim, with_status=False)
        x = s
    x = _top_mode(x)
    f = _fit_one(x, dim, *opts, ends, label)
    out = xr.Dataset({"cycle_mean": f.cycle_mean, "cycle_mean_se": f.cycle_mean_se,
                      "half_amplitude": f.cycle_half_amplitude,
                      "half_amplitude_se": f.cycle_half_amplitude_se,
                      "deviation": edge - f.cycle_mean})
    return _labelled(out, **({"edge": edge} if isinstance(edge, float) else {}))


# ============================================================================ fit_increments
def _lstsq_kernel(b, *cols_and_mask, ncore):
    b, *cols, mask = np.broadcast_arrays(b, *cols_and_mask)
    b2, lead = flat_rows(np.asarray(b, dtype=np.float64), ncore)
    b2 = b2.reshape(b2.shape[0], -1)
    A = np.stack([np.asarray(c, dtype=np.float64).reshape(b2.shape) for c in cols], axis=-1)
    m = np.asarray(mask, dtype=bool).reshape(b2.shape)
    coef, se, r2, n_used = K.lstsq_rows(b2, A, m)
    outs = []
    for i in range(len(cols)):
        outs += [coef[:, i].reshape(lead), se[:, i].reshape(lead)]
    return (*outs, r2.reshape(lead), n_used.reshape(lead))


def _regress(target, columns, mask, core):
    k = len(columns)
    args = [target, *columns, mask]
    res = lift(_lstsq_kernel, *args, core_dims=[core] * len(args), out_core_dims=[[]] * (2 * k + 2),
               out_dtypes=[np.float64] * (2 * k + 1) + [np.int64], kwargs={"ncore": len(core)})
    return res


def fit_increments(ds: xr.Dataset, dim: Hashable = "step", *, over: Sequence[Hashable] = (),
                   z_max: float | None = None, y_max: float | None = None,
                   start: int | None = None, stop: int | None = None,
                   y: xr.DataArray | None = None, residual: Hashable | None = None) -> xr.Dataset:
    """Regress two-step increments on the low-order model terms (Eq. 18-19, Figure 6 middle).

    The residual is the variable with role ``residual`` (mode 0 of a ``mode`` dim: the top NTK
    eigendirection), or the variable named by ``residual=``; y is :func:`eos_coordinate`.

    * P = 2 map datasets (y by the two-step nullcline: coordinates ``lam``, ``E_tilde``):
      Δ₂z̃ ≈ c₁ y z̃ and Δ₂y ≈ c₂ y z̃² + c₃ z̃², where Δ₂x = x_{t+2} − x_t. Theory (Ẽ = 0,
      λ = −ε): c₁ = 2, c₂ = −2(4 − 3ε + 4ε²), c₃ = −4ε (to lowest order in y, z̃).
    * Any other dataset (y = sharpness − edge, mode 0): Δ₂z₁ ≈ c₁ y z₁ with z₁ the residual
      along the top mode; the paper's Figure 6 (middle) has c₁ = 2.

    Each regression has no intercept and is solved per member from batched normal equations over
    the points of the core dims (``dim`` plus the dims in ``over``, pooled), restricted to the
    window abs(z̃_t) <= z_max, abs(y_t) <= y_max, start <= t <= stop (all optional). Pool over members
    (``over=("init",)``) when y hardly varies along one trajectory (c₂ and c₃ are then separated
    by the spread of y across members).

    Parameters
    ----------
    ds : xarray.Dataset
    dim : str, default "step"
    over : sequence of str
        Further dims pooled into each regression.
    z_max, y_max : float, optional
        Window on abs(z̃_t) (or abs(z₁)) and abs(y_t); > 0 (inf allowed, NaN refused).
    start, stop : int, optional
        Window on the step value t of the increment x_{t+2} − x_t; ``start <= stop``.
    y : xarray.DataArray, optional
        Precomputed EOS coordinate (default: :func:`eos_coordinate` of ``ds``).
    residual : str, optional
        The residual variable (default: the role map's ``residual``, else a variable named
        ``residual``).

    Returns
    -------
    xarray.Dataset
        ``c1``, ``c1_se``, ``r2_z``, ``n_points`` and, for P = 2 map datasets, ``c2``, ``c2_se``, ``c3``,
        ``c3_se``, ``r2_y``, ``n_points_y``. Standard errors from s² (AᵀA)⁻¹; R² is uncentred
        (1 − RSS/Σ target²) since the models have no intercept. Fewer usable points than terms
        gives NaN.

    Raises
    ------
    ValueError
        Missing dims, a stride without two-step pairs, a layout without the needed variables,
        ``start > stop`` or a window bound out of range (named in the message).
    TypeError
        Complex variables, a ``y`` that is not a real DataArray, or non-numeric options.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> t = np.arange(30)
    >>> y = np.full(30, 0.01)
    >>> z1 = 0.1 * (1 + 2 * 0.01) ** (t / 2)          # Δ₂z₁ = 2 y z₁ exactly
    >>> ds = xr.Dataset({"z1": ("step", z1), "sharpness": ("step", 2 + y)}, coords={"step": t})
    >>> round(float(fit_increments(ds, residual="z1").c1), 10)
    2.0
    """
    check_xarray(ds, "ds")
    if not isinstance(ds, xr.Dataset):
        raise ValueError("fit_increments needs a Dataset with a residual (role 'residual') and a sharpness "
                         "or the P = 2 map coordinates 'lam' and 'E_tilde'")
    check_dim(ds, dim)
    if isinstance(over, str) or not hasattr(over, "__len__"):
        over = (over,)
    over = check_dims(ds, over, "over") if len(over) else ()
    if dim in over:
        raise ValueError(f"over must not contain the step dim {dim!r}")
    z_max = check_real("z_max", z_max, 0, lo_open=True, allow_inf=True, allow_none=True)
    y_max = check_real("y_max", y_max, 0, lo_open=True, allow_inf=True, allow_none=True)
    start = check_integer("start", start, -_BIG, _BIG, allow_none=True)
    stop = check_integer("stop", stop, -_BIG, _BIG, allow_none=True)
    if start is not None and stop is not None and start > stop:
        raise ValueError(f"start must be <= stop (a window of step values); got start={start}, stop={stop}")
    if y is not None:
        if not isinstance(y, xr.DataArray):
            raise TypeError(f"y must be an xarray.DataArray (the EOS coordinate) or None; got {type(y).__name__}")
        check_real_dtype(y.dtype, "y", "iuf")
        if dim not in y.dims:
            raise ValueError(f"y must have the step dim {dim!r}; it has dims {tuple(y.dims)}")
    check_real_data(ds, "ds", dim)
    core = [dim, *over]
    toy = _method(ds, "auto") == "two_step_nullcline"
    if residual is None:
        z = role_var(ds, "residual", what="fit_increments (or pass residual=)")
    elif not isinstance(residual, Hashable) or residual not in ds.data_vars:
        raise ValueError(f"residual={residual!r} is not a data variable of ds; it has {list(ds.data_vars)}")
    else:
        z = ds[residual]
    if dim not in z.dims:
        raise ValueError(f"the residual {z.name!r} has no dim {dim!r}")
    check_real_dtype(z.dtype, f"ds[{z.name!r}]", "iuf")
    z = _top_mode(z).drop_vars("mode", errors="ignore")
    y = eos_coordinate(ds) if y is None else y
    pairs = two_step_pairs(step_values(ds, dim), dim)
    z0, z2 = _pair_views(z, dim, pairs)
    y0, y2 = _pair_views(y, dim, pairs)
    dz = z2 - z0.variable
    t = z0[dim] if dim in z0.coords else xr.DataArray(step_values(ds, dim)[pairs[0]], dims=dim)
    mask = xr.ones_like(z0 * y0, dtype=bool)
    if z_max is not None:
        mask = mask & (abs(z0) <= z_max)
    if y_max is not None:
        mask = mask & (abs(y0) <= y_max)
    if start is not None:
        mask = mask & (t >= start)
    if stop is not None:
        mask = mask & (t <= stop)
    zy = z0 * y0
    c1, c1se, r2z, nz = _regress(dz, [zy], mask, core)
    out = xr.Dataset({"c1": c1, "c1_se": c1se, "r2_z": r2z, "n_points": nz})
    out = out.drop_vars([c for c in out.coords if c == "mode"])  # the top mode's scalar coordinate
    if toy:
        dy = y2 - y0.variable
        z02 = z0 * z0
        c2, c2se, c3, c3se, r2y, ny = _regress(dy, [y0 * z02, z02], mask, core)
        out.update({"c2": c2, "c2_se": c2se, "c3": c3, "c3_se": c3se, "r2_y": r2y, "n_points_y": ny})
    return _labelled(out)
