"""The promise every public entry point keeps, checked on fuzzed inputs (shared by the fuzz tests).

An outcome is one of
* a clear error: ``ValueError`` or ``TypeError`` (subclasses included) whose message names
  one of the parameters it is given (``names``);
* a dataset that passes :func:`eosdyn.check_dataset` whose non-finite values are all flagged:
  a member holding a non-finite value has a ``status`` other than ``converged`` / ``max_steps``
  / ``cycle``, or the value lies after the member's own stop (``steps_taken``), or the
  variable is allowed to hold NaN by construction (``allow_nan``).

:func:`outcome` runs a call, checks the promise, and returns the category (``"error"``,
``"dataset"``, ``"value"``) so fuzz tests can count outcomes by category.
"""

from __future__ import annotations

import collections

import numpy as np
import xarray as xr

import eosdyn
from eosdyn.conventions import STATUS_VALUES

#: outcome counts of this test session, by test file and category (printed at the end)
COUNTS: collections.Counter = collections.Counter()

_OK_FATES = {STATUS_VALUES[k] for k in ("converged", "max_steps", "cycle")}


def assert_clear_error(err: BaseException, names) -> None:
    """``err`` is a ValueError/TypeError whose message names one of ``names``."""
    assert isinstance(err, (ValueError, TypeError)), f"unclear error {type(err).__name__}: {err}"
    msg = str(err)
    names = [names] if isinstance(names, str) else list(names)
    assert any(n in msg for n in names), f"error message does not name any of {names}: {msg!r}"


def assert_flagged(ds: xr.Dataset, allow_nan=()) -> None:
    """``ds`` passes check_dataset and every non-finite value sits in a flagged member."""
    eosdyn.check_dataset(ds)
    if "status" not in ds:
        for name, var in ds.data_vars.items():
            if var.dtype.kind in "fc" and name not in allow_nan:
                assert bool(np.isfinite(var).all()), f"{name} holds unflagged non-finite values"
        return
    status = ds["status"]
    ok_member = xr.apply_ufunc(np.isin, status, kwargs={"test_elements": list(_OK_FATES)})
    for name, var in ds.data_vars.items():
        if var.dtype.kind not in "fc" or name in allow_nan:
            continue
        bad = ~np.isfinite(var)
        if "step" in var.dims and "steps_taken" in ds:
            bad = bad & (ds["step"] <= ds["steps_taken"])
        member_dims = [d for d in var.dims if d in status.dims]
        extra = [d for d in var.dims if d not in status.dims]
        if extra:
            bad = bad.any(extra)
        unflagged = bad & ok_member.broadcast_like(bad) if member_dims else bad & ok_member.all()
        assert not bool(unflagged.any()), (
            f"{name} holds non-finite values in members whose status is "
            f"{sorted(set(np.asarray(status.where(unflagged.any([d for d in unflagged.dims if d not in status.dims]) if [d for d in unflagged.dims if d not in status.dims] else unflagged)).ravel().tolist()))}")


def outcome(call, names, *, counter_key: str = "fuzz", allow_nan=()) -> str:
    """Run ``call()``; assert the promise; return the outcome category."""
    try:
        res = call()
    except (ValueError, TypeError) as err:
        assert_clear_error(err, names)
        COUNTS[(counter_key, "clear error")] += 1
        return "error"
    if isinstance(res, xr.Dataset):
        assert_flagged(res, allow_nan=allow_nan)
        COUNTS[(counter_key, "flagged dataset")] += 1
        return "dataset"
    COUNTS[(counter_key, "value")] += 1
    return "value"
