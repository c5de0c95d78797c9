"""Every docstring example in the package runs, and every public function has one.

The examples are run with :mod:`doctest` (ELLIPSIS and NORMALIZE_WHITESPACE), module by module;
``+SKIP`` is allowed only where an example needs torch's data files or writes outside a
temporary folder (``ALLOWED_SKIPS``).
"""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil

import pytest

import eosdyn

MODULES = sorted(m.name for m in pkgutil.walk_packages(eosdyn.__path__, "eosdyn."))
#: modules whose examples may be skipped, and why
ALLOWED_SKIPS = {
    "eosdyn.nn.data": "loads the CIFAR-10 subset from ../shared/data",
    "eosdyn.nn.pipeline": "trains a network on CIFAR-10 for an hour",
}
#: the public namespaces whose functions must each carry a runnable example
NAMESPACES = ["eosdyn", "eosdyn.toy", "eosdyn.qrm", "eosdyn.taylor", "eosdyn.theory", "eosdyn.analysis",
              "eosdyn.catalog", "eosdyn.registry", "eosdyn.systems", "eosdyn.conventions", "eosdyn.io",
              "eosdyn.sweep", "eosdyn.recipes", "eosdyn.claims"]


def _has_torch() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    if name.startswith("eosdyn.nn") and not _has_torch():
        pytest.skip("eosdyn.nn needs the optional torch extra")
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(module, name):
        if test.examples and any(ex.options.get(doctest.SKIP) for ex in test.examples):
            assert name in ALLOWED_SKIPS, f"{test.name} skips an example; make it run (or justify it)"
        runner.run(test, clear_globs=True)
    res = runner.summarize(verbose=False)
    assert res.failed == 0, f"{res.failed} failing docstring example(s) in {name}"


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_every_public_function_has_an_example(namespace):
    module = importlib.import_module(namespace)
    missing = []
    for attr in getattr(module, "__all__", []):
        obj = getattr(module, attr)
        if inspect.isfunction(obj) and ">>>" not in (obj.__doc__ or ""):
            missing.append(attr)
    assert not missing, f"{namespace}: public functions without a docstring example: {missing}"
