"""Writing files safely: atomic replacement with the umask's permissions, and sha256 digests.

Every file eosdyn writes goes through :func:`atomic_write`: the content is written to a
temporary file in the destination folder (named ``.<name>.<random>.tmp``), flushed, given the
usual permissions (``0o666 & ~umask``, as :func:`open` would) and renamed over the destination
with :func:`os.replace`, so a reader never sees a partial file and an interrupted write leaves
at most a temporary file that :func:`clean_stale_temporaries` can remove.

Examples
--------
>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> atomic_write(d / "a.txt", lambda tmp: tmp.write_text("hello")).name
'a.txt'
>>> sha256_file(d / "a.txt")[:12]
'2cf24dba5fb0'
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["atomic_write", "atomic_write_text", "atomic_write_bytes", "atomic_copy", "sha256_file", "umask",
           "clean_stale_temporaries", "check_output_path", "check_output_dir"]

#: pattern of the temporary files :func:`atomic_write` creates for a destination ``name``
_TMP_RE = r"^\.{name}\.[A-Za-z0-9_]+\.tmp$"


def umask() -> int:
    """The process umask (read without changing it for longer than one call)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _probe_writable(folder: Path, name: str, shown: Path) -> None:
    """Create and remove a temporary file in ``folder`` (``os.access`` is always true for root)."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".eosdyn-probe.", suffix=".tmp", dir=folder)
    except OSError as err:
        raise ValueError(f"{name} {str(shown)!r}: folder {str(folder)!r} is not writable "
                         f"({err.strerror or err})") from None
    os.close(fd)
    os.unlink(tmp)


def _check_path_text(path, name: str) -> Path:
    if isinstance(path, bytes):
        try:
            path = os.fsdecode(path)
        except UnicodeDecodeError:
            raise ValueError(f"{name} must be a valid file path; got {path!r}") from None
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path (str or os.PathLike); got {type(path).__name__}")
    text = os.fspath(path)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if not text.strip():
        raise ValueError(f"{name} must be a non-empty file path; got {path!r}")
    if "\x00" in text:
        raise ValueError(f"{name} must not contain NUL characters; got {path!r}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{name} must be a path that is valid UTF-8 text; got {path!r}") from None
    return Path(text).expanduser()


def check_output_path(path, *, name: str = "path") -> Path:
    """Validate a destination file path before anything is computed or written.

    Raises ``ValueError`` naming ``name`` for an empty path, an existing directory, a parent
    that is a file, or a parent folder that cannot be created or written (checked by creating
    and removing a temporary file, so it also holds for root and for ``/proc``), and
    ``TypeError`` for something that is not a path.

    Examples
    --------
    >>> check_output_path("")
    Traceback (most recent call last):
    ...
    ValueError: path must be a non-empty file path; got ''
    """
    p = _check_path_text(path, name)
    if p.is_dir():
        raise ValueError(f"{name} {str(p)!r} is an existing directory; give a file path")
    if p.exists() and not p.is_file():
        raise ValueError(f"{name} {str(p)!r} exists and is not a regular file")
    _check_parents(p, name)
    return p


def check_output_dir(path, *, name: str = "path") -> Path:
    """Validate a folder that files will be written into (created if missing).

    Raises ``ValueError`` naming ``name`` for an empty path, an existing file, a path under a
    file, or a folder that cannot be created or written; ``TypeError`` for a non-path.

    Examples
    --------
    >>> check_output_dir(3, name="resume")
    Traceback (most recent call last):
    ...
    TypeError: resume must be a path (str or os.PathLike); got int
    """
    p = _check_path_text(path, name)
    if p.exists() and not p.is_dir():
        raise ValueError(f"{name} {str(p)!r} exists and is not a folder")
    if p.is_dir():
        _probe_writable(p, name, p)
        return p
    _check_parents(p, name)
    return p


def _check_parents(p: Path, name: str) -> None:
    for parent in [p.parent, *p.parent.parents]:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"{name} {str(p)!r} lies under {str(parent)!r}, which is a file, not a folder")
            _probe_writable(parent, name, p)
            return


def atomic_write(path, write: Callable[[Path], object], *, mode: int | None = None) -> Path:
    """Create or replace ``path`` atomically: ``write(tmp_path)`` fills a temporary file first.

    Parameters
    ----------
    path : path-like
        Destination; its folder is created if missing.
    write : callable
        ``write(tmp: Path)`` writes the whole content to ``tmp`` (which exists and is empty).
    mode : int, optional
        Permission bits; default ``0o666 & ~umask`` (what :func:`open` gives a new file).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        os.chmod(tmp_path, (0o666 & ~umask()) if mode is None else mode)
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path, text: str) -> Path:
    """:func:`atomic_write` of a UTF-8 text."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def atomic_write_bytes(path, data: bytes) -> Path:
    """:func:`atomic_write` of raw bytes."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_copy(src, dst) -> Path:
    """Copy ``src`` to ``dst`` atomically, with the umask's permissions (not ``src``'s)."""
    import shutil

    return atomic_write(dst, lambda tmp: shutil.copyfile(src, tmp))


def sha256_file(path) -> str:
    """Hex SHA-256 digest of a file's bytes."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def clean_stale_temporaries(folder, names=(), *, pattern: str | None = None,
                            older_than: float = 0.0) -> list[Path]:
    """Remove the temporaries :func:`atomic_write` left for destinations ``names`` in ``folder``.

    Only files named ``.<name>.<random>.tmp`` are touched (never anything else), where
    ``<name>`` is one of ``names`` or (with ``pattern``, a regular expression) any destination
    name matching ``pattern`` in full; and only those last modified more than ``older_than``
    seconds ago. Returns the removed paths.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / ".a.nc.x1y2.tmp").write_text(""), (d / "a.nc.tmp").write_text("")
    >>> [p.name for p in clean_stale_temporaries(d, ["a.nc"])]
    ['.a.nc.x1y2.tmp']
    >>> sorted(p.name for p in d.iterdir())
    ['a.nc.tmp']
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    names = [names] if isinstance(names, str) else list(names)
    pats = [re.compile(_TMP_RE.format(name=re.escape(n))) for n in names]
    if pattern is not None:
        pats.append(re.compile(_TMP_RE.format(name=f"(?:{pattern})")))
    now = time.time()
    removed = []
    for p in folder.iterdir():
        if p.name.endswith(".tmp") and any(pat.match(p.name) for pat in pats) and p.is_file():
            try:
                if now - p.stat().st_mtime >= older_than:
                    p.unlink()
                    removed.append(p)
            except OSError:
                pass
    return removed
