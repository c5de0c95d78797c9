"""Every simulation's output follows the dataset conventions and survives NetCDF exactly.

One small call per public simulation; each result must pass ``check_dataset``, carry a
provenance recipe that regenerates it bit for bit, and round-trip through
``to_netcdf``/``open_dataset`` as an ``identical`` dataset.
"""

import numpy as np
import pytest

import eosdyn
from eosdyn.conventions import read_config, regenerate

CASES = {
    "two_param": lambda: eosdyn.toy.two_param(eps=[0.1, 0.5], z0=[0.05, 0.3], T0=1.6, steps=40),
    "two_param_a": lambda: eosdyn.toy.two_param(a=[2.0, 4.0], E=0.0, z0=0.01, T0=0.5, steps=10,
                                                record_every=2),
    "catapult": lambda: eosdyn.toy.catapult(z0=[0.1, 0.3, 0.45], T0=[1.0, 3.5], steps=30),
    "linear": lambda: eosdyn.toy.linear(lam=[0.5, 1.5, 2.5], theta0=1.0, steps=20),
    "hierarchy": lambda: eosdyn.toy.hierarchy(q=[1.0, 0.3, -0.2], z0=0.1, w0=[0.5, 0.4, 0.3], steps=25),
    "one_datapoint": lambda: eosdyn.toy.one_datapoint(Q=[1.0, -0.1], theta0=[1.5, 0.5], eta=0.3,
                                                      steps=25),
    "two_param_flow": lambda: eosdyn.toy.two_param_flow(eps=0.1, z0=0.1, T0=1.5,
                                                        times=np.linspace(0, 5, 11)),
    "qrm_sweep": lambda: eosdyn.qrm.sweep(D=4, P=6, sigma_z=[0.5, 5.0], sigma_J=[0.5, 1.0], seeds=3,
                                          max_steps=50, record=5),
    "qrm_flow": lambda: eosdyn.qrm.gradient_flow(D=3, P=4, sigma_z=0.5, sigma_J=1.0, seeds=2, t_max=1.0,
                                                 n_times=5),
}


@pytest.fixture(params=sorted(CASES))
def dataset(request):
    return CASES[request.param]()


def test_conventions(dataset):
    eosdyn.check_dataset(dataset)
    assert read_config(dataset)["function"].startswith("eosdyn.")


def test_netcdf_round_trip(dataset, tmp_path):
    path = tmp_path / "ds.nc"
    eosdyn.to_netcdf(dataset, path)
    back = eosdyn.open_dataset(path)
    assert back.identical(dataset)
    for name in dataset.variables:
        assert back[name].dtype == dataset[name].dtype, name


def test_provenance_regenerates(dataset):
    again = regenerate(dataset)
    for name in dataset.data_vars:
        np.testing.assert_array_equal(again[name].values, dataset[name].values, err_msg=name)
