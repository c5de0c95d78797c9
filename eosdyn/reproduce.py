"""The main job: reproduce the paper from the catalog (``eosdyn reproduce``).

For every catalog entry, :func:`reproduce` opens the dataset (computed on first
use, then served from the cache), writes it as ``<name>.nc``, renders
``<name>.png`` with the entry's ``plot`` view (:mod:`eosdyn.plot`) and
``<name>.html``, an interactive page that works offline (:func:`eosdyn.plot.explorer`
of the dataset: its trajectories, a map or a scatter of final values, or curves over
a parameter, the extra dims as widgets; the entry's view drawn by bokeh where the
explorer cannot draw the dataset), evaluates the entry's ``claims`` and writes
``summary.md``: one table comparing each measured claim with the paper's statement
and eosdyn's corrected theory (each row linked to its figure), one table of the
files, and the figures with their captions, plus ``intake.yaml`` (an intake
catalog of the NetCDF files). Each figure's caption (:func:`caption`: entry,
paper reference, variant, parameters) is also stored in the PNG (text chunks
``Title`` and ``Description``) and in the HTML page (``<meta name="description">``).

A *claim* is a function ``claim(ds) -> list[dict]`` named in the entry's
``claims`` list; each row has the keys ``claim``, ``paper`` (what the paper
states), ``theory`` (eosdyn's corrected theory, a value or formula), ``measured``
and ``verdict`` (``"agrees"``, ``"disagrees"`` or a short remark) and optionally
``note``. The claim functions of the built-in catalog live in :mod:`eosdyn.claims`.

Examples
--------
One entry, quick variant, with the cache and the output in a temporary folder:

>>> import os, pathlib, tempfile
>>> from eosdyn.reproduce import reproduce
>>> with tempfile.TemporaryDirectory() as tmp:
...     old = os.environ.get("EOSDYN_CACHE")
...     os.environ["EOSDYN_CACHE"] = os.path.join(tmp, "cache")
...     try:
...         result = reproduce(pathlib.Path(tmp) / "out", quick=True, names=["rnl_monte_carlo"], plots=False)
...     finally:
...         _ = os.environ.pop("EOSDYN_CACHE") if old is None else os.environ.update(EOSDYN_CACHE=old)
...     result["failures"], result["summary"].name, result["claims"][0]["entry"]
([], 'summary.md', 'rnl_monte_carlo')
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

from . import _files, catalog
from ._version import __version__
from .io import open_dataset

__all__ = ["reproduce", "variant_for", "format_value", "write_intake_catalog", "caption"]

_STATE = ".reproduce_state.json"


def variant_for(entry: catalog.Entry, quick: bool) -> str | None:
    """The variant :func:`reproduce` uses: ``quick`` (if defined) with ``quick=True``, else ``full`` (if defined).

    Examples
    --------
    >>> from eosdyn import catalog
    >>> variant_for(catalog.get("rnl_monte_carlo"), quick=True), variant_for(catalog.get("rnl_monte_carlo"), quick=False)
    ('quick', None)
    """
    want = "quick" if quick else "full"
    return want if want in entry.variants else None


def format_value(value: Any) -> str:
    """Compact text for a number (4 significant digits), a sequence of numbers, or anything else.

    Examples
    --------
    >>> format_value(2.0 / 3), format_value([1.0, 0.123456]), format_value("agrees")
    ('0.6667', '[1, 0.1235]', 'agrees')
    """
    import numpy as np

    if isinstance(value, str):
        return value
    arr = np.asarray(value)
    if arr.dtype.kind in "iufb" and arr.ndim == 0:
        v = arr.item()
        return f"{v:.4g}" if isinstance(v, float) else str(v)
    if arr.dtype.kind in "iuf" and arr.ndim == 1 and arr.size <= 8:
        return "[" + ", ".join(f"{v:.4g}" for v in arr.tolist()) + "]"
    return str(value)


def caption(entry: catalog.Entry, variant: str | None = None) -> str:
    """A figure's caption: what was run (paper reference, catalog entry, variant, parameters).

    Parameters
    ----------
    entry : eosdyn.catalog.Entry
    variant : str, optional
        The variant that was run (``None``: the base recipe).

    Returns
    -------
    str
        One line; long parameter values are shortened.

    Examples
    --------
    >>> from eosdyn import catalog
    >>> text = caption(catalog.get("rnl_monte_carlo"), "quick")
    >>> text.startswith("Eq. 27 (Section 4): catalog entry rnl_monte_carlo, variant quick; parameters: ")
    True
    """
    head = f"{entry.paper}: catalog entry {entry.name}, variant {variant or 'default'}"
    if entry.kind == "stored":
        stored = Path(str(entry.stored_path)).name
        return f"{head}; stored file {stored} (sha256 {str(entry.sha256)[:12]}...); eosdyn {__version__}"
    parts = []
    for key, value in entry.parameters_for(variant).items():
        text = format_value(value) if not isinstance(value, (list, tuple)) else json.dumps(value)
        parts.append(f"{key}={text if len(text) <= 60 else text[:57] + '...'}")
    return f"{head}; parameters: {', '.join(parts)}; recipe {entry.function}; eosdyn {__version__}"


def _write_html(entry: catalog.Entry, ds, view, path: Path, text: str) -> None:
    """Write the interactive page: the dataset's explorer (its trajectories, else its default
    variable); where the explorer cannot draw the dataset, the entry's view drawn by bokeh."""
    from .plot import interactive

    kw = dict(title=f"{entry.paper}: {entry.name}",
              metadata={"description": text, "generator": f"eosdyn {__version__}"})
    try:
        interactive.save(interactive.explorer(ds, interactive.trajectory_variables(ds) or None), path, **kw)
    except Exception as err:  # e.g. too many frames: the static view, else the explorer's error
        try:
            interactive.save(view(ds), path, **kw)
        except Exception:
            raise err from None


def _sha(path: Path) -> str:
    return _files.sha256_file(path)


def _copy_atomic(src: Path, dst: Path) -> None:
    """Copy atomically, with the umask's permissions (not mkstemp's 0600)."""
    _files.atomic_copy(src, dst)


def _md_escape(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def reproduce(
    outdir: str | os.PathLike = "reproduce",
    *,
    quick: bool = False,
    names: list[str] | None = None,
    plots: bool = True,
    progress: bool = False,
    quiet: bool = True,
) -> dict:
    """Write every catalog entry's dataset (NetCDF), figure (PNG) and ``summary.md`` into ``outdir``.

    Parameters
    ----------
    outdir : path-like
        Output folder (created).
    quick : bool, default False
        Use each entry's ``quick`` variant (sized to finish in minutes on 2 cores);
        otherwise its ``full`` variant where one exists, else the base recipe.
    names : list of str, optional
        Only these entries (default: all, in catalog order).
    plots : bool, default True
        Render the PNG figures (needs the ``plot`` extra: holoviews + matplotlib).
    progress : bool, default False
        Show a tqdm progress bar.
    quiet : bool, default True
        Suppress per-entry messages.

    Returns
    -------
    dict
        ``entries`` (list of per-entry records), ``claims`` (list of claim rows),
        ``failures`` (names of entries that failed), ``summary`` (path of
        ``summary.md``) and ``seconds`` (wall time).

    Notes
    -----
    A second run with the same catalog reuses the cache: the NetCDF files are
    copied from the cache, and a PNG and the claim rows are recomputed only when
    the dataset (its sha256), the eosdyn version or the entry's plot/claims changed
    (recorded in ``<outdir>/.reproduce_state.json``).
    An entry that fails is reported in ``summary.md`` (with the error) and in
    ``failures``; the other entries still run.

    Examples
    --------
    See the module documentation (it runs one entry in a temporary folder).
    """
    from tqdm.auto import tqdm

    t_start = time.perf_counter()
    all_entries = catalog.entries()
    selected = list(all_entries) if names is None else list(names)
    for n in selected:
        catalog.get(n)  # raises CatalogError listing valid names
        catalog.check_callables(all_entries[n])  # a name nobody registered stops the run before any work
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    plot_note = ""
    if plots:
        try:
            import holoviews  # noqa: F401
            import matplotlib  # noqa: F401
        except ImportError:
            plots = False
            plot_note = "Figures skipped: the plot extra is not installed (pip install 'eosdyn[plot]')."
            warnings.warn(plot_note, RuntimeWarning, stacklevel=2)
    state_path = out / _STATE
    try:
        state = json.loads(state_path.read_text())
    except (OSError, ValueError):
        state = {}
    records: list[dict] = []
    claim_rows: list[dict] = []
    failures: list[str] = []
    bar = tqdm(selected, desc="eosdyn reproduce", unit="entry", disable=not progress, file=sys.stderr)
    for name in bar:
        entry = all_entries[name]
        variant = variant_for(entry, quick) if entry.kind == "recipe" else None
        bar.set_postfix_str(name)
        rec: dict[str, Any] = {"name": name, "paper": entry.paper, "variant": variant or "default",
                               "kind": entry.kind, "error": None}
        t0 = time.perf_counter()
        try:
            src = catalog.cache_path(name, variant=variant)
            digest = catalog.verified_digest(src) if entry.kind == "recipe" else None
            rec["cached"] = entry.kind == "stored" or digest is not None
            ds = None
            if digest is None:  # compute (recipe) or verify (stored) through the catalog
                ds = catalog.open(name, variant=variant)
                digest = _sha(src)
            nc = out / f"{name}.nc"
            if not (nc.exists() and _sha(nc) == digest):
                _copy_atomic(src, nc)
            rec["netcdf"] = nc.name
            png = out / f"{name}.png"
            html = out / f"{name}.html"
            rec["caption"] = caption(entry, variant)
            key = {"digest": digest, "version": __version__, "plot": entry.plot, "claims": list(entry.claims),
                   "caption": rec["caption"], "html": 1}
            prev = state.get(name) if isinstance(state.get(name), dict) else {}
            fresh = prev.get("key") != key
            need_png = plots and (fresh or not png.exists())
            need_html = plots and (fresh or not html.exists())
            if fresh or need_png or need_html or "claims" not in prev or "dims" not in prev:
                if ds is None:
                    ds = open_dataset(src)
            if need_png or need_html:
                from . import plot as _plot
                from .plot import interactive

                view = catalog.resolve_function(entry.plot, "view", entry=entry) if entry.plot else _plot.auto
                meta = {"Title": f"{entry.paper} ({name})", "Description": rec["caption"],
                        "Source": f"eosdyn {__version__}"}
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)
                    if need_png:
                        interactive.save(view(ds), png, metadata=meta)
                    if need_html:
                        _write_html(entry, ds, view, html, rec["caption"])
            if plots:
                rec["png"] = png.name
                rec["html"] = html.name
            if ds is not None:
                rows = [{"entry": name, **{k: format_value(v) for k, v in row.items()}}
                        for claim in entry.claims
                        for row in catalog.resolve_function(claim, "claim", entry=entry)(ds)]
                dims = ", ".join(f"{k}={v}" for k, v in ds.sizes.items())
            else:
                rows, dims = prev["claims"], prev["dims"]
            rec["dims"] = dims
            claim_rows += rows
            state[name] = {"key": key, "claims": rows, "dims": dims}
        except Exception as err:  # one failing entry must not stop the others
            rec["error"] = f"{type(err).__name__}: {err}"
            failures.append(name)
            if not quiet:
                traceback.print_exc()
        rec["seconds"] = time.perf_counter() - t0
        records.append(rec)
        if not quiet:
            status = "FAILED" if rec["error"] else "ok"
            print(f"[{status}] {name} ({rec['seconds']:.1f} s)", file=sys.stderr)
    bar.close()
    _files.atomic_write_text(state_path, json.dumps(state, indent=1))
    seconds = time.perf_counter() - t_start
    write_intake_catalog(out, [r for r in records if not r["error"]], all_entries)
    summary = out / "summary.md"
    _files.atomic_write_text(summary, _summary(records, claim_rows, quick=quick, seconds=seconds, note=plot_note))
    return {"entries": records, "claims": claim_rows, "failures": failures, "summary": summary,
            "seconds": seconds}


def write_intake_catalog(outdir: str | os.PathLike, records: list[dict], entries: dict) -> Path:
    """Write ``intake.yaml``: an intake (intake-xarray ``netcdf`` driver) catalog of the exported files.

    Paths are relative to the catalog (``{{ CATALOG_DIR }}``), so the folder can be moved or shared.
    eosdyn does not need intake; collaborators who use it can ``intake.open_catalog("intake.yaml")``.

    Examples
    --------
    >>> import tempfile, yaml
    >>> from eosdyn import catalog
    >>> rec = {"name": "rnl_monte_carlo", "netcdf": "rnl_monte_carlo.nc", "variant": "quick"}
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = write_intake_catalog(tmp, [rec], catalog.entries())
    ...     yaml.safe_load(path.read_text())["sources"]["rnl_monte_carlo"]["args"]
    {'urlpath': '{{ CATALOG_DIR }}/rnl_monte_carlo.nc'}
    """
    import yaml

    sources = {}
    for r in records:
        e = entries[r["name"]]
        sources[r["name"]] = {
            "description": e.description,
            "driver": "netcdf",
            "args": {"urlpath": "{{ CATALOG_DIR }}/" + r["netcdf"]},
            "metadata": {"paper": e.paper, "variant": r["variant"], "eosdyn_version": __version__},
        }
    path = Path(outdir) / "intake.yaml"
    _files.atomic_write_text(path, yaml.safe_dump({"metadata": {"version": 1, "creator": f"eosdyn {__version__} reproduce"},
                                                   "sources": sources}, sort_keys=False, allow_unicode=True))
    return path


def _figure_links(rec: dict) -> str:
    links = [f"[{label}]({rec[k]})" for k, label in (("png", "PNG"), ("html", "HTML")) if rec.get(k)]
    return " · ".join(links)


def _summary(records: list[dict], claims: list[dict], *, quick: bool, seconds: float, note: str = "") -> str:
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# eosdyn reproduce: summary",
        "",
        f"Agarwala, Pedregosa & Pennington (ICML 2023), reproduced by eosdyn {__version__} on {now} "
        f"({'quick' if quick else 'full'} variants, {seconds:.1f} s in total).",
        "",
        *([note, ""] if note else []),
        "## Claims: the paper, eosdyn's corrected theory, and what was measured",
        "",
        "| entry | claim | paper states | corrected theory (eosdyn) | measured | verdict | figure |",
        "|---|---|---|---|---|---|---|",
    ]
    by_name = {r["name"]: r for r in records}
    for row in claims:
        cells = [row["entry"], row.get("claim", ""), row.get("paper", ""), format_value(row.get("theory", "")),
                 format_value(row.get("measured", "")), row.get("verdict", "")]
        lines.append("| " + " | ".join(_md_escape(c) for c in cells) + " | "
                     + _figure_links(by_name.get(row["entry"], {})) + " |")
    if not claims:
        lines.append("| (no claims evaluated) | | | | | | |")
    notes = [(row["entry"], row.get("claim", ""), row["note"]) for row in claims if row.get("note")]
    if notes:
        lines += ["", "Notes:", ""]
        lines += [f"- **{e}** ({_md_escape(c)}): {_md_escape(n)}" for e, c, n in notes]
    lines += [
        "",
        "## Datasets and figures",
        "",
        "| entry | paper | variant | dataset | figure | dims | cached | time (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        if r["error"]:
            lines.append(f"| {r['name']} | {_md_escape(r['paper'])} | {r['variant']} | **FAILED**: "
                         f"{_md_escape(r['error'])} | | | | {r['seconds']:.1f} |")
        else:
            lines.append(f"| {r['name']} | {_md_escape(r['paper'])} | {r['variant']} | [{r['netcdf']}]({r['netcdf']}) | "
                         + _figure_links(r) +
                         f" | {r['dims']} | {'yes' if r['cached'] else 'no'} | {r['seconds']:.1f} |")
    figures = [r for r in records if not r["error"] and (r.get("png") or r.get("html"))]
    if figures:
        lines += ["", "## Figures", ""]
        for r in figures:
            lines += [f"- **{_md_escape(r['paper'])}** ({r['name']}): {_figure_links(r)}. "
                      f"Caption: {_md_escape(r.get('caption', ''))}"]
    failed = [r["name"] for r in records if r["error"]]
    lines += ["", f"{len(records) - len(failed)} of {len(records)} entries reproduced"
              + (f"; failed: {', '.join(failed)}." if failed else "."), ""]
    return "\n".join(lines)
