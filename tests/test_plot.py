"""eosdyn.plot: every view renders a PNG; generic views on arbitrary datasets."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

pytest.importorskip("holoviews")
pytest.importorskip("matplotlib")

import eosdyn  # noqa: E402
from eosdyn import claims, plot, recipes  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


def is_png(path) -> bool:
    return path.read_bytes()[:8] == PNG and path.stat().st_size > 1000


def test_auto_and_generic(tmp_path):
    ds = xr.Dataset({"z": (("eps", "step"), np.random.default_rng(0).random((30, 5))),
                     "m": (("a", "b"), np.ones((3, 4))), "f": ("eps", np.arange(30.0)),
                     "status": ("eps", np.zeros(30, np.int8))},
                    coords={"eps": np.linspace(0.1, 0.2, 30), "step": np.arange(5)}, attrs={"title": "demo"})
    out = plot.save_png(plot.auto(ds), tmp_path / "auto.png")
    assert is_png(out)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    over = plot.trajectories(ds, "z", max_curves=7, hline=2.0)
    assert len([c for c in over if type(c).__name__ == "Curve"]) == 7
    assert is_png(plot.save_png(plot.histogram(ds["f"], vline=2.0), tmp_path / "h.png"))


def test_qrm_views(tmp_path):
    ds = eosdyn.qrm.sweep(D=6, P=12, sigma_z=[0.1, 0.3], sigma_J2=0.2, seeds=[0], steps=60, record_every=1)
    assert is_png(plot.save_png(plot.qrm_trajectories(ds), tmp_path / "f3.png"))
    pd = recipes.qrm_phase_diagrams(sizes=[[6, 12], [8, 4]], sigma_z=[0.1, 0.3, 1.0], sigma_J2=[0.1, 0.3],
                                    seeds=2, steps=200)
    assert is_png(plot.save_png(plot.phase_diagrams(pd), tmp_path / "f4.png"))
    rn = recipes.rnl_monte_carlo(sizes=[[6, 8]], sigma_z=[0.5, 1.0], seeds=10)
    assert is_png(plot.save_png(plot.rnl(rn), tmp_path / "rnl.png"))
    t4 = recipes.theorem41_monte_carlo(sizes=[[6, 8]], sigma_z=[0.5, 1.0], seeds=10)
    assert is_png(plot.save_png(plot.theorem41(t4), tmp_path / "t41.png"))


def test_save_png_failure_leaves_nothing(tmp_path):
    with pytest.raises(Exception):
        plot.save_png(object(), tmp_path / "bad.png")
    assert list(tmp_path.iterdir()) == []


def _toy_datasets():
    return {
        "loss_landscape": eosdyn.toy.one_datapoint(Q=[1.0, -0.1], theta0=[1.5, -4.32], E=0.0, eta=[0.3, 0.6],
                                                   steps=20),
        "eos_trajectories": eosdyn.toy.two_param(eps=0.05, z0=[-0.5, -0.4], T0=1.6, steps=100),
        "final_sharpness_vs_eps": eosdyn.toy.two_param(eps=[0.05, 0.1], z0=-0.45, T0=1.65, steps=20000,
                                                       record_every=None, stop="batch"),
        "phase_portraits": recipes.phase_portrait(a=[1.0, -2.0], E_tilde=0.0, n=7, steps=100),
        "final_T_distribution": recipes.random_initialisations(eps=0.1, n=30, steps=20000),
    }


def test_toy_views_build_and_one_renders(tmp_path):
    import holoviews as hv

    for name, ds in _toy_datasets().items():
        view = getattr(plot, name)(ds)
        assert isinstance(view, (hv.Layout, hv.Overlay)), name
    assert is_png(plot.save_png(view, tmp_path / "f9.png"))


@pytest.mark.slow
def test_toy_views_render(tmp_path):
    for name, ds in _toy_datasets().items():
        assert is_png(plot.save_png(getattr(plot, name)(ds), tmp_path / f"{name}.png")), name


def test_auto_puts_roles_first_and_skips_fates():
    """auto draws the role map's variables first (whatever their names) and never the fates."""
    from eosdyn.conventions import set_roles

    t = np.arange(6)
    two = ("seed", "step")
    ds = xr.Dataset({"aaa": (two, np.stack([t, t]) * 1.0), "curv": (two, 2.0 + 0 * np.stack([t, t])),
                     "status": ("seed", np.int8([3, 3])), "diverged_at": ("seed", [-1, -1]),
                     "converged_at": ("seed", [-1, -1]), "steps_taken": ("seed", [5, 5])},
                    coords={"step": t, "seed": [0, 1]})
    titles = [p.opts.get().kwargs.get("title", "") for p in plot.auto(set_roles(ds, sharpness="curv"))]
    assert len(titles) == 2 and titles[0].startswith("curv") and titles[1].startswith("aaa")


def test_network_view_and_claim(tmp_path):
    """Synthetic trajectory with the real-network layout: sharpness(step, mode), z1(step), hessian_sharpness(step_h)."""
    step = np.arange(200)
    s0 = 2.0 + 0.3 * np.sin(step / 15.0)
    ds = xr.Dataset({"sharpness": (("step", "mode"), np.stack([s0, 0.8 * np.ones(200)], axis=1)),
                     "z1": ("step", (-1.0) ** step * np.exp(-step / 100)),
                     "hessian_sharpness": ("step_h", s0[::20])},
                    coords={"step": step, "mode": [0, 1], "step_h": step[::20]})
    assert is_png(plot.save_png(plot.network_trajectory(ds), tmp_path / "nn.png"))
    rows = claims.claim_figure5(ds)
    up = int(np.sum((s0[:-1] < 2) & (s0[1:] >= 2)))
    assert f"{up} upward crossings" in rows[0]["measured"] and up >= 2
    assert rows[0]["verdict"] == "agrees" and rows[1]["verdict"] == "agrees"


def test_symbols_label_known_variables():
    """Axis labels are the mathematical symbols of names the conventions define."""
    from eosdyn.conventions import VARIABLES
    from eosdyn.plot import _style

    assert set(_style.SYMBOLS) <= set(VARIABLES)
    assert _style.symbol("sigma_z") == r"$\tilde{\sigma}_z$"
    assert _style.symbol("mode") == VARIABLES["mode"][0].split(" (")[0]


def _hlines(view):
    import holoviews as hv

    return [float(h.data) for h in view.traverse(lambda x: x, [hv.HLine])]


def test_edge_comes_from_the_dataset():
    """The edge of stability on sharpness axes is the dataset's edge (coordinate 'edge'), not a constant 2."""
    ds = eosdyn.qrm.sweep(D=6, P=12, sigma_z=[0.1, 0.3], sigma_J2=0.2, seeds=[0], steps=30, record_every=1)
    assert _hlines(plot.qrm_trajectories(ds)) == [2.0]
    assert _hlines(plot.qrm_trajectories(ds.assign_coords(edge=1.5))) == [1.5]
    t = np.arange(40)
    net = xr.Dataset({"sharpness": (("step", "mode"), np.stack([1.5 + 0.1 * (-1.0) ** t, 0.5 + 0 * t], 1)),
                      "z1": ("step", 0.1 * (-1.0) ** t)}, coords={"step": t, "edge": 1.5})
    assert 1.5 in _hlines(plot.network_trajectory(net))


def test_logy_draws_log10_with_power_ticks():
    da = xr.DataArray([1.0, 1e-2, 1e-4], dims="step", coords={"step": [0, 1, 2]}, name="loss")
    over = plot.trajectories(da, logy=True)
    curve = over.Curve.I
    np.testing.assert_allclose(curve.dimension_values(1), [0.0, -2.0, -4.0])
    ticks = over.opts.get().kwargs["yticks"]
    assert [t[0] for t in ticks] == [-4.0, -3.0, -2.0, -1.0, 0.0]


@pytest.mark.skipif(not (eosdyn.catalog.builtin_catalog_dir() / "data" / "cifar_fcn_projections.nc").exists(),
                    reason="stored cifar_fcn datasets not present")
def test_figure6_view_panels():
    """Figure 6: the fitted line through the plotted points is their least-squares slope (through the
    origin, computed here independently); the Taylor curves start on the network's sharpness."""
    import holoviews as hv

    proj = eosdyn.catalog.open("cifar_fcn_projections")
    traj = eosdyn.catalog.open("cifar_fcn_trajectory")
    view = plot.network_projections(proj, trajectory=traj, t0=4200, steps=20)
    left, middle, right = list(view)
    # A: every extreme eigenvalue of Q1 and of the random direction is drawn
    pts = np.concatenate([s.dimension_values(1) for s in left.traverse(lambda x: x, [hv.Scatter])])
    np.testing.assert_allclose(np.sort(pts), np.sort(np.concatenate([proj.q1_eigenvalue.values.ravel(),
                                                                     proj.qrand_eigenvalue.values.ravel()])))
    # B: the fit line's slope is the least-squares slope of the scatter
    sc = middle.traverse(lambda e: e, [hv.Scatter])[0]
    x, y = sc.dimension_values(0), sc.dimension_values(1)
    fit = [c for c in middle.traverse(lambda e: e, [hv.Curve]) if c.label.startswith("fit")][0]
    fx, fy = fit.dimension_values(0), fit.dimension_values(1)
    np.testing.assert_allclose((fy[1] - fy[0]) / (fx[1] - fx[0]), np.sum(x * y) / np.sum(x * x), rtol=1e-6)
    assert abs(np.sum(x * y) / np.sum(x * x) - 1.0) < 0.3          # Δ₂z₁ ≈ 2 y z₁ (paper: slope 1)
    # C: the Taylor model starts on the network's sharpness at t0
    curves = {c.label: c for c in right.traverse(lambda e: e, [hv.Curve])}
    net, tay = curves["network"], curves["Taylor model, $t_0$ = 4200"]
    assert tay.dimension_values(0)[0] == 4200
    np.testing.assert_allclose(tay.dimension_values(1)[0],
                               net.dimension_values(1)[list(net.dimension_values(0)).index(4200)], rtol=1e-4)
