"""Where the C backend's libraries live: a private per-user cache, or a private stand-in.

**Location.**  ``$GRAPHC_CACHE_DIR``, else ``$XDG_CACHE_HOME/graphc``, else
``~/.cache/graphc``, created private (0700).  A directory another user owns or can write
to is refused: whoever can write there could plant code that graphc would load.  When the
location is refused, cannot be made (a file where the folder should be, a path under
``/proc``) or is not writable (a read-only home), graphc says why in a
:class:`~graphc.CompilerWarning` -- once per reason and process -- and builds in a
private temporary directory instead (``mkdtemp``: 0700, this user's), removed when the
process exits.  So C still runs, compiled afresh in each process, and nothing is ever read
from or written to a refused place.

**Integrity.**  A library is named by a SHA-256 of its source, compiler and flags
(:func:`graphc.codegen.c_toolchain.build`) and sealed: the SHA-256 of its bytes is appended to it
(dynamic loaders ignore bytes after the segments they map).  A cached library whose seal
does not match -- emptied, truncated by a full disk or a killed copy, overwritten -- is
never handed to the dynamic loader (``dlopen`` of a truncated library can kill the
process with SIGBUS) but built again, with a CompilerWarning.

**Concurrency and pruning.**  A build compiles in a fresh ``build-*`` scratch directory
and renames the sealed library into place (atomic), so concurrent builds of one graph are
safe.  After each build the cache keeps the :data:`CACHE_LIMIT` most recently used
libraries, and deletes scratch directories older than :data:`SCRATCH_AGE` seconds (left by
killed builds; a running build's is younger).  Only names graphc gives are ever deleted.
"""
from __future__ import annotations

import atexit
import hashlib
import os
import re
import shutil
import stat
import tempfile
import time
import warnings
from pathlib import Path

from .. import forksafe
from ..errors import CompilerWarning, GraphcError

#: Libraries the cache keeps: a build that adds one beyond this deletes the least recently
#: used (a library counts as used when it is built or found).  Each is 15-50 KB with its
#: source, so the cache stays under ~50 MB however many graphs are compiled.
CACHE_LIMIT = 1000
#: A scratch directory this many seconds old belongs to a killed build (a build takes seconds).
SCRATCH_AGE = 3600
#: Part of every library's cache key: libraries of an older layout are never taken for damaged.
FORMAT = "sealed-sha256"

_LIBRARY_NAME = re.compile(r"graphc-[0-9a-f]{40}\.so")
_SCRATCH_NAME = re.compile(r"build-[a-z0-9_]+")  # tempfile.mkdtemp(prefix="build-")
_SEAL_SIZE = hashlib.sha256().digest_size

_stand_in_lock = forksafe.Lock()
_stand_in: dict[str, Path] = {}  # "path": this process's private build directory, once made
_warned: set[str] = set()  # the reasons already given


def cache_dir() -> Path:
    """The per-user cache directory, created private; a GraphcError saying why it cannot be used."""
    root = os.environ.get("GRAPHC_CACHE_DIR")
    if root:
        path = Path(root)
    else:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        path = Path(base) / "graphc"
    path = path.absolute()  # "." named libraries with no slash, which dlopen sought on the system's path
    advice = "set GRAPHC_CACHE_DIR to a private directory"
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = path.stat()
    except OSError as error:
        raise GraphcError(f"graphc's cache directory {path} cannot be made ({error.strerror or error}); "
                          f"{advice}") from None
    if hasattr(os, "getuid") and (info.st_uid != os.getuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)):
        raise GraphcError(f"graphc's cache directory {path} is owned or writable by another user; {advice}")
    if not os.access(path, os.W_OK | os.X_OK):
        raise GraphcError(f"graphc's cache directory {path} is not writable; {advice}")
    return path


def build_dir() -> Path:
    """:func:`cache_dir`, or when it cannot be used, this process's private temporary
    directory, with a CompilerWarning saying why (see the module docstring)."""
    try:
        return cache_dir()
    except GraphcError as error:
        reason = str(error)
    with _stand_in_lock:
        if reason not in _warned:
            _warned.add(reason)
            warnings.warn(f"{reason}. Meanwhile graphc builds C in a private temporary directory, "
                          f"removed at exit", CompilerWarning, stacklevel=2)
        path = _stand_in.get("path")
        if path is None or not path.is_dir():
            try:
                path = Path(tempfile.mkdtemp(prefix="graphc-"))
            except OSError as error:
                raise GraphcError(f"{reason}; and no temporary directory can be made either "
                                  f"({error.strerror or error})") from None
            atexit.register(_remove, path, os.getpid())
            _stand_in["path"] = path
        return path


def _remove(path: Path, owner: int) -> None:
    if os.getpid() == owner:  # not from a forked child: the directory is its parent's
        shutil.rmtree(path, ignore_errors=True)


def seal(library: Path) -> None:
    """Append the SHA-256 of ``library``'s bytes (checked by :func:`usable`)."""
    digest = hashlib.sha256(library.read_bytes()).digest()
    with open(library, "ab") as file:
        file.write(digest)


def usable(library: Path) -> bool:
    """Whether ``library`` is cached and its seal matches (then marked as used for pruning).
    A damaged one is reported with a CompilerWarning; the caller builds it again."""
    try:
        data = library.read_bytes()
    except FileNotFoundError:
        return False
    except OSError as error:  # a directory (or something unreadable) where the library goes
        warnings.warn(f"the cached C library {library} cannot be read ({error.strerror or error}); removing it "
                      f"and building it again", CompilerWarning, stacklevel=2)
        shutil.rmtree(library, ignore_errors=True)
        return False
    if len(data) > _SEAL_SIZE and hashlib.sha256(data[:-_SEAL_SIZE]).digest() == data[-_SEAL_SIZE:]:
        _touch(library)
        return True
    warnings.warn(f"the cached C library {library} is damaged ({len(data)} bytes, seal does not "
                  f"match); building it again", CompilerWarning, stacklevel=2)
    return False


def _touch(path: Path) -> None:
    try:
        os.utime(path)
    except OSError:  # removed meanwhile by another process's prune: the caller rebuilds
        pass


def prune(directory: Path, keep: int | None = None) -> None:
    """Delete the least recently used libraries beyond ``keep`` (default CACHE_LIMIT) and
    their sources, and scratch directories older than SCRATCH_AGE.  Only names graphc
    gives are considered; what another process deletes first is skipped."""
    keep = CACHE_LIMIT if keep is None else keep
    libraries = []
    for entry in os.scandir(directory):
        try:
            if _LIBRARY_NAME.fullmatch(entry.name):
                libraries.append((entry.stat().st_mtime_ns, entry.name))
            elif (_SCRATCH_NAME.fullmatch(entry.name) and entry.is_dir(follow_symlinks=False)
                  and entry.stat(follow_symlinks=False).st_mtime < time.time() - SCRATCH_AGE):
                shutil.rmtree(entry.path, ignore_errors=True)
        except OSError:
            continue
    libraries.sort()
    for _, name in libraries[:max(0, len(libraries) - keep)]:
        for path in (directory / name, directory / (name[:-len(".so")] + ".c")):
            try:
                path.unlink()
            except OSError:
                pass


def discard(library: Path, why: str) -> None:
    """Delete a cached library that passed its seal check but ``why`` (a CompilerWarning
    says so); a library already gone was pruned by another process, which is no news."""
    if library.exists():
        warnings.warn(f"the cached C library {library} {why}; building it again", CompilerWarning, stacklevel=2)
    try:
        library.unlink()
    except OSError:
        pass
