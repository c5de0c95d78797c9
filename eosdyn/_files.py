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

__all__ = ["atomic_write", "atomic_write_text", "atomic_copy", "sha256_file", "umask",
           "clean_stale_temporaries", "check_output_path"]

#: pattern of the temporary files :func:`atomic_write` creates for a destination ``name``
_TMP_RE = r"^\.{name}\.[A-Za-z0-9_]+\.tmp$"


def umask() -> int:
    """The process umask (read without changing it for longer than one call)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_output_path(path, *, name: str = "path") -> Path:
    """Validate a destination file path before anything is computed or written.

    Raises ``ValueError`` naming ``name`` for an empty path, an existing directory, a parent
    that is a file, or a parent folder that cannot be created or written.

    Examples
    --------
    >>> check_output_path("")
    Traceback (most recent call last):
    ...
    ValueError: path must be a non-empty file path; got ''
    """
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, (str, os.PathLike)) or not str(os.fspath(path)).strip():
        raise ValueError(f"{name} must be a non-empty file path; got {path!r}")
    if "\x00" in str(os.fspath(path)):
        raise ValueError(f"{name} must not contain NUL characters; got {path!r}")
    p = Path(path).expanduser()
    if p.is_dir():
        raise ValueError(f"{name} {str(p)!r} is an existing directory; give a file path")
    for parent in [p.parent, *p.parent.parents]:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"{name} {str(p)!r} lies under {str(parent)!r}, which is a file, not a folder")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise ValueError(f"{name} {str(p)!r}: folder {str(parent)!r} is not writable")
            if parent == p.parent:  # try it: some folders (/proc, read-only mounts) refuse even root
                try:
                    fd, probe = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=parent)
                except OSError as err:
                    raise ValueError(f"{name} {str(p)!r}: cannot write in folder {str(parent)!r} "
                                     f"({err.strerror or err})") from None
                os.close(fd)
                os.unlink(probe)
            break
    return p


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


def atomic_copy(src, dst) -> Path:
    """Copy ``src`` to ``dst`` atomically, with the umask's permissions (not ``src``'s)."""
    import shutil

    return atomic_write(dst, lambda tmp: shutil.copyfile(src, tmp))


def sha256_file(path) -> str:
    """Hex SHA-256 digest of a file's bytes."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def clean_stale_temporaries(folder, names, *, older_than: float = 0.0) -> list[Path]:
    """Remove the temporaries :func:`atomic_write` left for destinations ``names`` in ``folder``.

    Only files named ``.<name>.<random>.tmp`` for one of the given destination names are
    touched (never anything else), and only those last modified more than ``older_than``
    seconds ago. Returns the removed paths.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    pats = [re.compile(_TMP_RE.format(name=re.escape(n))) for n in names]
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
