"""The documentation: a gallery page for every catalog entry, an API page for every namespace, no lab notes.

The gallery generator (docs/_ext/eosdyn_gallery.py) is tested on its own in the default run: every
built-in entry gets a page listed in the gallery index, a page's snippet really draws its PNG when
run, a failing snippet is reported (so ``sphinx-build -W`` fails), stale generated pages go away.
The full ``sphinx-build -W`` (the one in .ci/run) is the slow test at the end.
"""

from __future__ import annotations

import doctest
import importlib.util
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import eosdyn
from eosdyn import catalog

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, DOCS / "_ext" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses look the module up by name
    spec.loader.exec_module(mod)
    return mod


gallery = _load("eosdyn_gallery")


api_ext = _load("eosdyn_api")


def _toctree_entries(markdown: str) -> list[str]:
    out = []
    for block in re.findall(r"```\{toctree\}\n(.*?)```", markdown, flags=re.S):
        out += [ln.strip() for ln in block.splitlines() if ln.strip() and not ln.startswith(":")]
    return out


# --------------------------------------------------------------------------- every entry has a page
def test_every_builtin_catalog_entry_has_a_gallery_page():
    root = catalog.builtin_catalog_dir()
    files = sorted(p for p in root.iterdir() if p.suffix in (".yaml", ".yml"))
    expected = {name for f in files for name in catalog.load(f)}
    assert expected and "figure4_phase_diagrams" in expected and expected <= set(catalog.list())
    entries = gallery.builtin_entries()
    pages = [gallery.page(e) for e in entries]
    assert {p.name for p in pages} == expected
    listed = _toctree_entries(gallery.index(pages))
    assert sorted(listed) == sorted(expected), "each entry is listed exactly once in the gallery index"
    for entry, p in zip(entries, pages):
        compile(p.code, p.name, "exec")  # the snippet is valid Python
        assert f'eosdyn.catalog.open("{entry.name}"' in p.code
        assert (entry.plot or "eosdyn.plot.auto") in p.code, "the page draws the catalog's own view"
        want = "quick" if entry.kind == "recipe" and "quick" in entry.variants else None
        assert p.variant == want and ('variant="quick"' in p.code) == (want == "quick")
        assert f"```python\n{p.code}\n```" in p.markdown, "the page shows exactly the lines it runs"
        assert f"```{{figure}} {entry.name}.png" in p.markdown


def test_gallery_groups_follow_the_paper():
    pages = [gallery.page(e) for e in gallery.builtin_entries()]
    by = {p.name: p.group for p in pages}
    assert by["figure4_phase_diagrams"] == "figures" and by["theorem31_sharpness"] == "results"
    text = gallery.index(pages)
    figures = _toctree_entries(text.split("## Theorems")[0])
    numbers = [int(re.match(r"Figure (\d+)", catalog.get(n).paper).group(1)) for n in figures]
    assert numbers == sorted(numbers), "figures in the paper's order"
    # an entry that is not a paper result goes under "Beyond the paper"
    other = type("E", (), {"paper": "momentum and Adam on the QRM (not in the paper)", "tags": ()})()
    tagged = type("E", (), {"paper": "Figure 3, with Adam", "tags": ("beyond",)})()
    assert gallery.classify(other)[0] == "beyond" and gallery.classify(tagged)[0] == "beyond"


def test_gallery_extension_examples_run():
    result = doctest.testmod(gallery, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 3 and result.failed == 0


def test_descriptions_are_escaped_for_markdown():
    text = gallery._md_text("eta*lambda_max in [0, 2] and $x$, see `eosdyn nn build` | done")
    assert text == r"eta\*lambda\_max in \[0, 2\] and \$x\$, see `eosdyn nn build` \| done"


# --------------------------------------------------------------------------- the snippet really draws
_TINY = """\
version: 1
entries:
  - name: tiny_eos
    description: A short EOS map run (eps*T).
    paper: Figure 2
    recipe:
      function: eosdyn.toy.two_param
      parameters: {eps: 0.05, z0: [-0.5, -0.4], T0: 1.8, steps: 200}
    variants:
      quick: {steps: 40}
    plot: eosdyn.plot.eos_trajectories
  - name: tiny_broken
    description: A run whose parameters are out of range.
    paper: beyond the paper
    recipe:
      function: eosdyn.toy.two_param
      parameters: {eps: 0.05, z0: -0.5, T0: 1.8, steps: -3}
"""


def test_generate_runs_the_snippets_reports_failures_and_prunes(tmp_path, monkeypatch):
    pytest.importorskip("holoviews")
    pytest.importorskip("matplotlib")
    cat = tmp_path / "tiny.yaml"
    cat.write_text(_TINY)
    monkeypatch.setenv("EOSDYN_CATALOG_PATH", str(cat))
    monkeypatch.setenv("EOSDYN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(gallery, "builtin_entries", lambda: list(catalog.load(cat).values()))
    out = tmp_path / "gallery"
    out.mkdir()
    (out / "old_entry.md").write_text(gallery.MARK + "\n# gone\n")
    (out / "old_entry.png").write_bytes(b"\x89PNG old")
    (out / "notes.md").write_text("# hand-written, not generated\n")
    (out / "tiny_broken.png").write_bytes(b"\x89PNG stale")  # a failed run must not keep an old figure
    warnings: list[str] = []
    pages = gallery.generate(out, warn=warnings.append)

    assert [p.name for p in pages] == ["tiny_eos", "tiny_broken"]
    assert not (out / "old_entry.md").exists() and not (out / "old_entry.png").exists()
    assert (out / "notes.md").exists(), "only files the generator wrote are removed"
    png = (out / "tiny_eos.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5000
    import matplotlib.image as mpimg

    assert mpimg.imread(out / "tiny_eos.png").std() > 0.01, "the figure is not blank"
    page = (out / "tiny_eos.md").read_text()
    assert 'ds = eosdyn.catalog.open("tiny_eos", variant="quick")' in page
    assert "`steps=40`" in page and r"(eps\*T)" in page
    # the broken entry: reported, named, and no figure left behind
    assert len(warnings) == 1 and "tiny_broken" in warnings[0] and "steps" in warnings[0]
    assert not (out / "tiny_broken.png").exists()
    broken = (out / "tiny_broken.md").read_text()
    assert "```{warning}\nThis build could not draw the figure" in broken and "{figure}" not in broken
    assert 'ds = eosdyn.catalog.open("tiny_broken")' in broken, "the page still shows the lines it ran"
    index = (out / "index.md").read_text()
    assert "## Figures of the paper" in index and "## Beyond the paper" in index
    assert sorted(_toctree_entries(index)) == ["tiny_broken", "tiny_eos"]
    # a second run with the same catalog leaves the pages untouched (incremental Sphinx builds)
    before = (out / "tiny_eos.md").stat().st_mtime_ns
    gallery.generate(out, draw=False, warn=warnings.append)
    assert "```{note}" in (out / "tiny_eos.md").read_text()
    gallery.generate(out, warn=warnings.append, links=lambda n: (f"{n}.html", f"../_images/{n}.png"))
    assert (out / "tiny_eos.md").stat().st_mtime_ns >= before and (out / "tiny_eos.png").exists()
    # HTML builders: a group whose figures were all drawn is a grid of linked thumbnails
    index = (out / "index.md").read_text()
    figures, beyond = index.split("## Beyond the paper")
    assert '<a href="tiny_eos.html"' in figures and 'src="../_images/tiny_eos.png"' in figures
    assert ":hidden:" in figures and ":hidden:" not in beyond and "<img" not in beyond
    assert sorted(_toctree_entries(index)) == ["tiny_broken", "tiny_eos"]


# --------------------------------------------------------------------------- API reference, navigation
def test_api_extension_lists_every_public_function_and_class():
    result = doctest.testmod(api_ext, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 1 and result.failed == 0
    import inspect

    from test_namespaces import NAMESPACES

    for ns in NAMESPACES:
        mod = importlib.import_module(ns)
        rst = "\n".join(api_ext.namespace_rst(ns))
        for name in mod.__all__:
            obj = getattr(mod, name)
            if inspect.isfunction(obj) or inspect.isclass(obj):
                assert f"\n   {name}\n" in rst and f":: {name}\n" in rst, (ns, name)
    text = api_ext.expand("intro\n\n.. eosdyn-namespace:: eosdyn.io\n\nend")
    assert text.startswith("intro\n\n.. module:: eosdyn.io") and text.endswith("\n\nend")


def test_api_reference_documents_every_public_namespace():
    from test_namespaces import NAMESPACES

    api = (DOCS / "api.md").read_text()
    documented = set(re.findall(r"\.\. (?:automodule|eosdyn-namespace):: (eosdyn[\w.]*)", api))
    assert set(NAMESPACES) <= documented, sorted(set(NAMESPACES) - documented)


def test_every_page_is_in_the_navigation():
    index = (DOCS / "index.md").read_text()
    listed = set(_toctree_entries(index))
    pages = {p.stem for p in DOCS.glob("*.md") if p.name != "index.md"}
    assert pages <= listed, sorted(pages - listed)
    assert "gallery/index" in listed


#: phrases of lab notes: they belong in the dated docs/benchmarks.md, not in user pages
LAB_NOTES = [r"not met", r"\bpaused\b", r"this session", r"\bin one session\b", r"\btarget \d",
             r"\b20\d\d-\d\d-\d\d\b", r"\bTODO\b", r"\bXXX\b", r"\bwork in progress\b"]


@pytest.mark.parametrize("page", sorted(p.name for p in DOCS.glob("*.md")
                                        if p.name not in ("benchmarks.md", "conventions.md")))
def test_user_pages_have_no_lab_notes(page):
    text = re.sub(r"\]\([^)]*\)", "]()", (DOCS / page).read_text())  # link targets may name dated sections
    hits = [(pat, m.group(0)) for pat in LAB_NOTES for m in re.finditer(pat, text, flags=re.I)]
    assert not hits, f"{page}: {hits} (performance notes go to docs/benchmarks.md, dated)"


# --------------------------------------------------------------------------- the full build (CI)
@pytest.mark.slow
def test_sphinx_build_with_warnings_as_errors(tmp_path):
    if shutil.which("sphinx-build", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("sphinx is not installed (pip install -e '.[docs]')")
    html = tmp_path / "html"
    proc = subprocess.run([str(Path(sys.executable).parent / "sphinx-build"), "-W", "-q", "-b", "html",
                           str(DOCS), str(html)], capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert proc.returncode == 0, textwrap.shorten(proc.stderr[-4000:], 4000)
    for entry in gallery.builtin_entries():
        page = (html / "gallery" / f"{entry.name}.html").read_text()
        imgs = re.findall(r'<img[^>]*src="\.\./(_images/[^"]+\.png)"', page)
        assert imgs and all((html / i).stat().st_size > 5000 for i in imgs), entry.name
    assert "gallery/index.html" in (html / "index.html").read_text()
    assert eosdyn.__version__ in (html / "index.html").read_text()
