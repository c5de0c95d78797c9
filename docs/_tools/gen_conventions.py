"""Write docs/conventions.md from the registry and the names table (run after changes)."""
from pathlib import Path

from eosdyn import systems
from eosdyn.conventions import STATUS_VALUES, names_table

flags = ", ".join(f"`{k}` = {v}" for k, v in STATUS_VALUES.items())
text = f"""# Conventions: one vocabulary, one schema

Every eosdyn simulation is a *system* with a record in `eosdyn.systems` (its parameters, state,
roles and an example), runs through the driver of its state kind, and returns a labelled
`xarray.Dataset` that follows this page. `eosdyn.check_dataset(ds)` enforces the schema and
`tests/test_conformance.py` runs the same contract over every registered producer.

## Options every producer shares

| option | meaning |
|---|---|
| `steps` | the maximum number of GD steps (integer ≥ 0) |
| `record_every` | record steps 0, k, 2k, ...; `None` records step 0 and the last step of the run only (each member's own last state is in the `final_*` variables) |
| `stop` | `"never"`: every member runs all `steps` (a diverged member is NaN after `diverged_at`); `"member"`: a member stops at its own fate and is NaN after its `steps_taken`; `"batch"`: every member runs until all members have a fate (or `steps`) |
| `tol` | a member converges when its `loss` < `tol` (`tol = 0`: never) |
| `diverge_loss` | a member diverges when its `loss` > `diverge_loss` or its state stops being finite |
| `dtype` | `"float64"` or `"float32"` (inputs must be representable) |
| `seeds` | random producers: `n` (seeds 0..n−1) or explicit seed values; each member's random streams come from `numpy.random.SeedSequence(seed)`, so results do not depend on chunking or scheduler |
| `times` | flows: the sample times (≥ 0, strictly increasing) |
| `rtol`, `atol`, `max_evals` | flows: integrator tolerances and work budget (right-hand-side evaluations per member) |

Every model parameter may be a scalar (kept as a 0-d coordinate), a 1-D array (a dim named
after the parameter, with its values as coordinate) or an `xarray.DataArray` (its own dims); all
dims broadcast. Bad values raise `ValueError`/`TypeError` naming the parameter and its allowed
range, before anything is allocated.

The table below is generated from the registry (`eosdyn.systems.option_table()`): each cell is
the producer's default, `required`, or why the producer does not take the option.

<!-- option-table -->
{systems.option_table()}<!-- /option-table -->

## Output schema

| variable | dims | meaning |
|---|---|---|
| `sharpness` | members…, `step` (flows: `time`) | η λ_max; the edge of stability is 2 |
| `loss` | members…, `step` | the loss `tol` and `diverge_loss` act on (each producer's docstring says which: ½ z̃² for the rescaled maps, ½ ‖z‖² for QRM, ...) |
| state (`z`, `T`, `theta`, `w`, `z_tilde`, ...) | members…, `step`, vector dims | the model state under its paper name |
| `status` | members… | CF flag variable: {flags} |
| `steps_taken` | members… | GD steps this member took (int64) |
| `diverged_at`, `converged_at` | members… | the step of the event (int64; −1: never); flows: the time (float; NaN: never) |
| `t_stop` | members… | flows: the time reached |
| `final_sharpness`, `final_loss`, `final_<state>` | members… | each member's value at its own last step |

Consistency (checked by `check_dataset`): `status` is `diverged` exactly where `diverged_at ≥ 0`;
`converged` needs `converged_at ≥ 0`; `diverged_at`, `converged_at` ≤ `steps_taken`; every
trajectory variable is NaN after `diverged_at`.

**Roles.** The attribute `eosdyn_roles` maps the roles `residual`, `curvature`, `sharpness`,
`loss`, `parameters` to variable names (e.g. `residual: z; curvature: T; sharpness: sharpness;
loss: loss`). Analyses and plots find variables by role (`eosdyn.conventions.role(ds, "residual")`),
never by the model's name.

## Dataset rules

| kind | rule |
|---|---|
| names | ASCII identifiers for dims, coordinates and variables; one name, one meaning across the package (table below) |
| variable attrs | CF `long_name` (may carry Unicode maths, e.g. "sharpness η λ_max") and `units` (`"1"` when dimensionless) |
| dataset attrs | `Conventions = "CF-1.10"`, `title`, `source = "eosdyn <version>"`, `model`, `equations`, `history` (appended, never overwritten), `eosdyn_config` (JSON: the public function users call and every parameter; `eosdyn.conventions.regenerate(ds)` rebuilds the dataset), `eosdyn_roles`, `tol`, `diverge_loss`, `stop` |
| attr values | strings, numbers or numeric arrays only (no dict/bool/None: they do not survive netCDF) |
| `step` | integer, strictly increasing; step 0 is the initial state |

## Names

Every name used in eosdyn datasets, with its CF `long_name` and `units`
(`eosdyn.conventions.VARIABLES`; `label()` applies it). `E_tilde` is Ẽ = η E of the rescaled
maps, `E` the raw E of the one-datapoint model; `sigma_z`, `sigma_J` are always the rescaled widths
σ̃_z, σ̃_J of Eq. 29 (the theory functions take them too).

<!-- names-table -->
{names_table()}<!-- /names-table -->
"""
Path("docs/conventions.md").write_text(text, encoding="utf-8")
