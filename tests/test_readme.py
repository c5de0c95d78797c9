"""The README's Python examples run as written, and its two commands stay what CI runs."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks(text):
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_quick_start_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    block = _python_blocks(README.read_text())[0]
    exec(compile(block, "README quick start", "exec"), {})
    assert (tmp_path / "two_param.nc").exists()


def test_two_commands_present():
    text = README.read_text()
    for marker in ("<!-- main-command -->", "<!-- test-command -->"):
        after = text.split(marker, 1)[1]
        assert after.lstrip().startswith("```bash"), marker
    main = text.split("<!-- main-command -->", 1)[1].split("```")[1]
    assert "eosdyn reproduce --quick" in main
    ci = (README.parent / ".ci" / "run").read_text()
    assert "test-command" in ci
