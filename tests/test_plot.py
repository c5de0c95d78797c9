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
