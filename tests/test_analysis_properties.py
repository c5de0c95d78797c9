"""Property tests: random shapes and dim orders never crash, and dims/coords are preserved.

Values are checked against plain NumPy on the same (transposed) arrays where that is cheap.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from hypothesis import assume, given
from hypothesis import strategies as st

from eosdyn import analysis as A

OTHER = ["seed", "sigma_z", "sigma_J", "eps", "init"]


@st.composite
def arrays(draw, min_steps=4):
    n_other = draw(st.integers(0, 3))
    names = draw(st.permutations(OTHER))[:n_other]
    sizes = [draw(st.integers(1, 3)) for _ in names]
    n_step = draw(st.integers(min_steps, 40))
    pos = draw(st.integers(0, n_other))
    dims = list(names)
    dims.insert(pos, "step")
    shape = list(sizes)
    shape.insert(pos, n_step)
    start = draw(st.integers(0, 3))
    seed = draw(st.integers(0, 2 ** 16))
    rng = np.random.default_rng(seed)
    data = rng.normal(size=shape)
    if draw(st.booleans()):   # a NaN-padded member
        idx = [0] * len(shape)
        data[tuple(idx[:pos]) + (slice(n_step // 2, None),) + tuple(idx[pos + 1:])] = np.nan
    coords = {d: np.arange(s) * 10 for d, s in zip(names, sizes)}
    coords["step"] = np.arange(start, start + n_step)
    return xr.DataArray(data, dims=dims, coords=coords, name="sharpness")


def _other(x):
    return {d: x.sizes[d] for d in x.dims if d != "step"}


@given(arrays())
def test_two_step_even_odd_props(x):
    d = A.two_step(x)
    assert d.dims == x.dims and d.sizes["step"] == x.sizes["step"] - 2
    ref = x.isel(step=slice(2, None)).values - x.isel(step=slice(None, -2)).values
    np.testing.assert_array_equal(d.values, ref)
    ev, od = A.even(x), A.odd(x)
    assert ev.sizes["step"] + od.sizes["step"] == x.sizes["step"]
    assert (ev.step % 2 == 0).all() and (od.step % 2 == 1).all()


@given(arrays())
def test_classify_props(x):
    lab = A.classify(x)
    assert dict(lab.sizes) == _other(x)
    assert set(np.unique(lab.values)) <= {0, 1, 2, 3}
    ends_nan = ~np.isfinite(x.isel(step=-1))
    assert (lab.where(ends_nan, 3) == 3).all()


@given(arrays(min_steps=16))
def test_fit_limit_props(x):
    f = A.fit_limit(x, min_points=4, tail=16)
    assert dict(f.limit.sizes) == {**_other(x), "branch": 2}
    for d in _other(x):
        np.testing.assert_array_equal(f[d].values, x[d].values)


@given(arrays(min_steps=4))
def test_stats_props(x):
    dims = [d for d in x.dims if d != "step"]
    assume(dims)   # statistics reduce over a member dim
    s = A.final_sharpness_stats(x, dim=dims[0], n_boot=20)
    rest = {d: x.sizes[d] for d in dims[1:]}
    assert dict(s.median_sharpness.sizes) == rest
    assert (s.n_valid + s.n_excluded == x.sizes[dims[0]]).all()
    assert (s.hist.sum("bin") + s.n_outside_bins == s.n_valid).all()
