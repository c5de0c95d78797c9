"""The ``eosdyn`` command line.

::

    eosdyn list                          # catalog entries
    eosdyn show NAME                     # one entry: recipe, variants, valid overrides, cache state
    eosdyn run NAME [-o out.nc] [--variant quick] [--set key=value ...]
    eosdyn export NAME out.nc [--variant quick] [--set key=value ...]
    eosdyn reproduce [--quick] [-o DIR]  # the main job: every entry as NetCDF + PNG + HTML + summary.md
    eosdyn plot NAME [-o FILE.png|FILE.html] [--variant quick] [--set key=value ...]
    eosdyn cache {dir,clear}
    eosdyn nn build --cifar PATH ...     # regenerate the stored real-network files (nn extra)
    eosdyn --version

Global options (before the command): ``--quiet`` (no progress bars or chatter),
``--catalog PATH`` (add a user catalog; repeatable). Exit codes: 0 success,
2 usage error (unknown entry, variant or ``--set`` key, bad value, missing or
altered stored file; the message lists the valid choices), 1 other failures.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

import yaml

from ._version import __version__


class _UsageError(Exception):
    pass


def build_parser() -> argparse.ArgumentParser:
    """The ``argparse`` parser of the ``eosdyn`` command."""
    parser = argparse.ArgumentParser(
        prog="eosdyn",
        description="Progressive sharpening and the edge of stability: simulations, theory, analyses.",
    )
    parser.add_argument("--version", action="version", version=f"eosdyn {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars or messages")
    parser.add_argument("--catalog", action="append", default=[], metavar="PATH",
                        help="add a user catalog (YAML file or folder); repeatable")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("list", help="list catalog entries")
    p.add_argument("-l", "--long", action="store_true", help="also show the paper reference and description")

    p = sub.add_parser("show", help="describe one catalog entry")
    p.add_argument("name")

    def recipe_args(p):
        p.add_argument("--variant", default=None, help="named variant of the entry (e.g. quick)")
        p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                       help="override a recipe parameter (YAML value: 0.1, [0.1, 0.2], true); repeatable")
        p.add_argument("--no-cache", action="store_true", help="compute afresh, bypassing the cache")

    p = sub.add_parser("run", help="compute (or load from cache) an entry's dataset")
    p.add_argument("name")
    p.add_argument("-o", "--output", default=None, help="also write the dataset to this NetCDF file")
    recipe_args(p)

    p = sub.add_parser("export", help="write an entry's dataset as a collaborator-ready NetCDF file")
    p.add_argument("name")
    p.add_argument("output")
    recipe_args(p)

    p = sub.add_parser("reproduce", help="reproduce the paper: NetCDF + PNG per entry and summary.md")
    p.add_argument("--quick", action="store_true", help="use the 'quick' variants (minutes on a laptop)")
    p.add_argument("-o", "--output", default="reproduce", help="output folder (default: ./reproduce)")
    p.add_argument("--only", nargs="+", default=None, metavar="NAME", help="only these entries")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG figures")

    p = sub.add_parser("plot", help="draw one entry: its view as a PNG, or an interactive HTML page")
    p.add_argument("name")
    p.add_argument("-o", "--output", default=None, metavar="FILE",
                   help="FILE.png (the entry's view) or FILE.html (interactive, works offline); "
                        "default: NAME.png")
    recipe_args(p)

    p = sub.add_parser("cache", help="show or clear the dataset cache")
    p.add_argument("action", choices=["dir", "clear"])

    from .nn import cli as nn_cli  # `eosdyn nn build`: regenerates the stored real-network files

    nn_cli.add_parser(sub)
    return parser


def _parse_sets(sets: list[str]) -> dict:
    from . import catalog

    out = {}
    for item in sets:
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise _UsageError(f"--set expects KEY=VALUE, got {item!r}")
        out[key] = catalog.parse_value(value)
    return out


def _progress(args) -> bool:
    return not args.quiet and sys.stderr.isatty()


def _progress_bar(args):
    """A progress bar on stderr for chunked (dask) computations, e.g. QRM sweeps over seeds;
    shown only on an interactive terminal, without ``--quiet``, for work over two seconds."""
    if not _progress(args):
        return contextlib.nullcontext()
    from dask.diagnostics import ProgressBar

    return ProgressBar(minimum=2.0, out=sys.stderr)


def _check_output(path: str | None, what: str = "-o/--output") -> None:
    """Refuse an output path that cannot be written, before anything is computed."""
    from ._files import check_output_path

    if path is None:
        return
    try:
        check_output_path(path, name=what)
    except ValueError as err:
        raise _UsageError(str(err)) from None


def _check_output_dir(path: str) -> Path:
    """Create the output folder of ``reproduce`` (or refuse, naming it) before anything runs."""
    import os

    if not path or not path.strip():
        raise _UsageError("-o/--output must be a non-empty folder path")
    out = Path(path).expanduser()
    if out.exists() and not out.is_dir():
        raise _UsageError(f"-o/--output {path!r} exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _UsageError(f"-o/--output {path!r}: cannot create the folder ({err.strerror or err})") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise _UsageError(f"-o/--output {path!r}: the folder is not writable")
    return out


def _open_entry(args):
    from . import catalog

    overrides = _parse_sets(args.sets)
    catalog.get(args.name)  # unknown entry -> CatalogError before any work
    try:
        with _progress_bar(args):
            return catalog.open(args.name, variant=args.variant, cache=not args.no_cache, **overrides)
    except (ValueError, TypeError) as err:
        if overrides and not isinstance(err, catalog.CatalogError):
            raise _UsageError(f"bad --set value for entry {args.name!r}: {err}") from None
        raise


def _say(args, msg: str) -> None:
    if not args.quiet:
        print(msg, file=sys.stderr)


def _cmd_list(args) -> int:
    from . import catalog

    ents = catalog.entries()
    for name in sorted(ents):
        e = ents[name]
        if args.long:
            desc = " ".join(e.description.split())
            desc = desc if len(desc) <= 90 else desc[:87] + "..."
            print(f"{name:28s} {e.kind:7s} {e.paper:24s} {desc}")
        else:
            print(name)
    return 0


def _cmd_show(args) -> int:
    from . import catalog

    print(yaml.safe_dump(catalog.describe(args.name), sort_keys=False, allow_unicode=True).rstrip())
    return 0


def _cmd_run(args) -> int:
    from . import catalog
    from .io import to_netcdf

    catalog.get(args.name)  # unknown entry -> usage error before any message
    _check_output(args.output)
    _say(args, f"opening {args.name} ...")
    ds = _open_entry(args)
    if args.output is not None:
        to_netcdf(ds, args.output)
        _say(args, f"wrote {args.output}")
    elif not args.no_cache:
        _say(args, f"cached at {catalog.cache_path(args.name, variant=args.variant, **_parse_sets(args.sets))}")
    if not args.quiet:
        print(ds)
    return 0


def _cmd_export(args) -> int:
    from .conventions import append_history, check_dataset
    from .io import to_netcdf

    _check_output(args.output, "OUTPUT")
    ds = _open_entry(args)
    append_history(ds, f"exported with `eosdyn export {args.name}` (eosdyn {__version__})")
    check_dataset(ds)
    to_netcdf(ds, args.output)
    _say(args, f"wrote {args.output}")
    return 0


def _cmd_reproduce(args) -> int:
    from . import catalog
    from .reproduce import reproduce

    if args.only:
        names = catalog.list()
        bad = [n for n in args.only if n not in names]
        if bad:
            raise catalog.CatalogError(f"unknown catalog entry {bad[0]!r}; valid entries: {', '.join(names)}")
    for name in args.only or catalog.list():
        catalog.check_callables(catalog.get(name))  # refuse unregistered functions before any work
    _check_output_dir(args.output)
    result = reproduce(args.output, quick=args.quick, names=args.only, plots=not args.no_plots,
                       progress=_progress(args), quiet=args.quiet)
    _say(args, f"wrote {len(result['entries'])} entries and {result['summary']} "
               f"in {result['seconds']:.1f} s")
    return 1 if result["failures"] else 0


def _cmd_plot(args) -> int:
    from . import catalog
    from .reproduce import caption

    entry = catalog.get(args.name)  # unknown entry -> usage error before any work
    catalog.check_callables(entry)
    output = args.output if args.output is not None else f"{args.name}.png"
    suffix = Path(output).suffix.lower()
    if suffix not in (".png", ".html"):
        raise _UsageError(f"-o/--output must end in .png or .html; got {output!r}")
    _check_output(output)
    if args.variant is not None:
        entry.parameters_for(args.variant)  # unknown variant -> usage error listing the valid ones
    try:
        from . import plot
        from .plot import interactive
    except ImportError as err:
        print(f"eosdyn: error: {err}", file=sys.stderr)
        return 1
    overrides = _parse_sets(args.sets)
    ds = _open_entry(args)
    text = caption(entry, args.variant)
    if overrides:
        text += "; overrides: " + ", ".join(f"{k}={v!r}" for k, v in overrides.items())
    view = catalog.resolve_function(entry.plot, "view", entry=entry) if entry.plot else plot.auto
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        if suffix == ".html":
            from .reproduce import _write_html

            _write_html(entry, ds, view, Path(output), text)
        else:
            interactive.save(view(ds), output, metadata={"Title": f"{entry.paper} ({entry.name})",
                                                         "Description": text,
                                                         "Source": f"eosdyn {__version__}"})
    _say(args, f"wrote {output}")
    return 0


def _cmd_cache(args) -> int:
    from . import catalog

    if args.action == "dir":
        print(catalog.cache_dir())
    else:
        removed = catalog.clear_cache()
        for path in removed:
            _say(args, f"removed {path}")
        n = sum(p.suffix == ".nc" for p in removed)
        _say(args, f"removed {n} cached datasets ({len(removed)} files) from {catalog.cache_dir()}; "
                   "other files there were left alone")
    return 0


def _cmd_nn(args) -> int:
    from .nn import cli as nn_cli

    return nn_cli.run(args)


_COMMANDS = {"list": _cmd_list, "show": _cmd_show, "run": _cmd_run, "export": _cmd_export,
             "reproduce": _cmd_reproduce, "plot": _cmd_plot, "cache": _cmd_cache, "nn": _cmd_nn}


def main(argv: list[str] | None = None) -> int:
    """Run the ``eosdyn`` command; return its exit code (0 ok, 2 usage error, 1 failure).

    Examples
    --------
    >>> import contextlib, io
    >>> with contextlib.redirect_stdout(io.StringIO()) as out:
    ...     code = main(["--quiet", "list"])
    >>> code, "figure4_phase_diagrams" in out.getvalue().split()
    (0, True)
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help/--version exit 0, usage errors exit 2
        return int(exc.code or 0)
    if args.command is None:
        parser.print_help()
        return 2
    from . import catalog

    try:
        for path in args.catalog:
            catalog.add(path)
        return _COMMANDS[args.command](args)
    except (catalog.CatalogError, catalog.UntrustedFunctionError, _UsageError) as err:
        print(f"eosdyn: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a file or folder the command needs: a message, not a traceback
        print(f"eosdyn: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # pragma: no cover
        print("eosdyn: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
