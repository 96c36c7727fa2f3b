"""The C backend's toolchain: find a compiler, build generated C into a cached library, load it.

**Flags.**  No ``-ffast-math``, ``-ffp-contract=off`` (no fused multiply-adds) and
``-fno-builtin-<name>`` for every libm function the code calls
(:data:`graphc.codegen.c_runtime.LIBM_CALLS`): every operation rounds as in graphc's
other backends.  ``-march=native``: the running CPU's vector instructions (the results are
the same IEEE operations on any instruction set), or a portable build where the compiler
rejects it.  ``$GRAPHC_CFLAGS`` adds flags after graphc's own (split as a shell
would; e.g. ``-fsanitize=address,undefined`` for ``make asan``), and is part of the key.
``numerics="fast"`` builds with :data:`FAST_FLAGS` instead (part of the key too).

**Loading: ctypes and a shared library, not cffi.**  ctypes is in the standard library,
so the backend adds no dependency and no build step of its own (cffi's API mode would
compile a CPython extension module per graph, needing Python's headers; its ABI mode
saves nothing over ctypes here).  The function has one fixed signature of pointers and
scalars, so the call costs a few microseconds -- once per batch, not per node.

**Cache.**  Libraries are cached as :mod:`graphc.codegen.c_cache` describes: in a private
per-user directory (one another user owns or can write to is refused; when none can be
used, a private temporary one, with a :class:`~graphc.CompilerWarning` saying why), named
by a SHA-256 of the source, the compiler and its version, the flags and the CPU, sealed with the
SHA-256 of their bytes (a damaged library is built again, never loaded), renamed into place
atomically (concurrent builds of one graph are safe), pruned to the most recently used.
graphc only ever loads libraries named by such a hash, and never unpickles anything.
"""
from __future__ import annotations

import _ctypes
import ctypes
import errno
import functools
import hashlib
import os
import platform
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Callable

from .. import forksafe
from ..errors import GraphcError
from . import c_cache
from .c_runtime import LIBM_CALLS, PRELUDE

#: Compiler flags, after the optimization level.  No -ffast-math, no fused multiply-adds:
#: every operation rounds as in graphc's other backends.  No SLP (straight-line)
#: vectorization: GCC 12.2 with AVX-512 miscompiles a pack of a vector's lanes that skips one
#: (``pack(v[8], v[9], v[10], v[12], ...)`` read lane 10 for lane 12; ``make fuzz`` found it
#: through an MLP's gradient, ``tests/test_codegen_c.py``); the layer kernels are vectorized
#: by hand and the row loops by the loop vectorizer, so it costs nothing measurable.
FLAGS = ("-std=c99", "-fPIC", "-shared", "-ffp-contract=off", "-fno-fast-math", "-fno-tree-slp-vectorize")
#: ``numerics="fast"``: fused multiply-adds (``-ffp-contract=fast``, with the FMA instructions
#: of MACHINE_FLAGS) and reassociation (``-fassociative-math``, which gcc applies only with
#: ``-fno-signed-zeros -fno-trapping-math``), so gcc may split and reorder sums.  Not the
#: rest of ``-ffast-math``: ``-ffinite-math-only`` would let gcc assume no inf or nan (and
#: fold away the checks relu, max and the sigmoid make on them), ``-freciprocal-math``
#: would turn divisions into an extra rounding each, and ``-fno-builtin-*`` still keeps
#: libm's own pow, exp, log, ...: only the order and fusion of + and * change.
FAST_FLAGS = ("-std=c99", "-fPIC", "-shared", "-ffp-contract=fast", "-fassociative-math", "-fno-signed-zeros",
              "-fno-trapping-math", "-fno-tree-slp-vectorize")
#: -O2 for functions of up to OPT_LIMIT statements: gcc's vectorizer and inliner specialize
#: the prelude's loops for each call's constant sizes (the moons and digits programs have
#: ~100 and ~400 statements and build in 0.15 and 0.3 s).  Beyond it -- a graph that
#: re-rolling could not shrink -- -O0: gcc's time at -O1 and -O2 grows faster than the
#: function (30,000 straight-line statements: 10 s at -O1 or -O2, 1.8 s at -O0).
OPT_LIMIT = 3000
#: The most statements a function graphc asks a C compiler to build: at -O0 gcc 12 took 25 s
#: for 200,000, minutes and 4.6 GB for 10^6, and its cc1 crashed on a gradient of 10^6 (an
#: outside hunt).  A graph that big does not re-roll; the Python backend runs it in bounded
#: memory (``backend="auto"`` falls back to it: :class:`TooLarge`).
MAX_STATEMENTS = 200_000


class TooLarge(GraphcError):
    """A program of more than :data:`MAX_STATEMENTS` statements, which graphc does not build in C."""


#: Code for the running CPU: its whole instruction set (AVX2, AVX-512, ...), so a block of
#: rows fills two vector registers (the prelude picks GC_V by it).  IEEE results are the same on
#: every instruction set: -ffp-contract=off forbids fused multiply-adds.  A compiler that
#: rejects the flags builds without them (see :func:`build`).  Generic tuning: gcc 12's
#: tuning for the CPU it detects made the digits MLP's gradient 10-20% slower on AMD Zen 4.
MACHINE_FLAGS = ("-march=native", "-mtune=generic")
#: gcc's build time, where it changes no number and no measured run time: RTL global CSE/PRE
#: (``-fno-gcse``) took 15-20% of gcc's 0.8 s for MLP(784, [100, 10])'s kernel, and the
#: tree-level passes already do that work on graphc's code (``bench/peers.py --only mnist``
#: and ``--only step``: the same times with and without it).  Dropped, with MACHINE_FLAGS and
#: VECTORIZED_FLAGS, by a compiler that rejects them; not given to clang.
GCC_FLAGS = ("-fno-gcse",)
#: For a library built ``outlined``: one copy of each layer kernel the code calls, not one
#: specialized for each call (the prelude's GC_LAYER).  For kernels a Python loop calls once a
#: step (:mod:`graphc.rows_kernels`, micrograd's full-batch loss), whose time is the loop's
#: Python: gcc builds micrograd's demo loss in less time, and its step takes as long.
OUTLINED_FLAGS = ("-DGC_OUTLINED",)
#: For a library built ``vectorized`` (the training driver, :mod:`.c_train`): gcc 12 vectorizes
#: at -O2 only loops whose trip count it knows to need no scalar remainder, and the driver's
#: loops over the params run to a count it is passed.  Its updates are elementwise, each
#: number's operations as written, so vectors change no bit; its sums stay in order (gcc
#: reorders none without ``-fassociative-math``).  MNIST's batch-32 ``train`` took 6.5 us a
#: sample without, 5.9-6.1 with (and 5.8-6.0 when the driver was built with each model's count).
#: Not given to clang, which vectorizes such loops at -O2.
VECTORIZED_FLAGS = ("-fvect-cost-model=cheap",)


@functools.lru_cache(maxsize=None)
def cpu() -> str:
    """What the running CPU is, for the cache key: a library built with MACHINE_FLAGS is only
    ever reused on a CPU with the same instruction set (a shared home directory on another
    machine builds its own).  Linux: the model and feature flags of /proc/cpuinfo."""
    try:
        with open("/proc/cpuinfo") as info:
            lines = [line for line in info if line.startswith(("model name", "flags", "Features", "CPU part"))]
        return "".join(dict.fromkeys(lines))
    except OSError:
        return f"{platform.machine()} {platform.processor()}"


#: Each libm function the code calls is built with -fno-builtin-<name>: gcc would otherwise
#: replace ``pow(x, 2.0)`` by ``x * x`` and ``pow(x, -1.0)`` by ``1.0 / x``, which differ
#: from libm's pow -- what Python's math.pow, hence the eager engine, calls -- in the last
#: bit on ~0.1% of inputs.
NO_BUILTINS = tuple(f"-fno-builtin-{name}" for name in LIBM_CALLS)

_lock = forksafe.Lock()
_loaded: dict[str, ctypes.CDLL] = {}


@functools.lru_cache(maxsize=None)
def find_compiler() -> tuple[str, str] | None:
    """``(command, version line)`` of the C compiler (``$CC``, which may carry words of its
    own, as ``ccache gcc`` or ``gcc -m64`` do; else cc, gcc, clang), or None.  The command is
    a shell-quoted string: :func:`_compile` splits it."""
    candidates = [os.environ["CC"]] if os.environ.get("CC") else ["cc", "gcc", "clang"]
    for candidate in candidates:
        try:
            words = shlex.split(candidate)
        except ValueError:  # unbalanced quotes: a path as it is, at most
            words = []
        path = shutil.which(words[0]) if words else None
        if path is None:  # a path with a space in it, unquoted
            path, words = shutil.which(candidate), [candidate]
        if path is None:
            continue
        try:
            version = subprocess.run([path, *words[1:], "--version"], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            continue
        if version.returncode == 0:
            return shlex.join([path, *words[1:]]), (version.stdout.splitlines() or [""])[0]
    return None


def optimization_level(source: str) -> str:
    """-O2, or -O0 for a function of more than OPT_LIMIT statements (see OPT_LIMIT);
    statements are counted as lines ending in a semicolon, the prelude's excluded.  -O2 for
    ``numerics="fast"`` too: -O3's loop vectorizer made the moons step 1.8x slower on Zen 3
    (63 against 36 us per ``mean_and_grad``) and gains nothing at 784-50-10 now that the
    prelude's layer kernels are register-blocked by hand (10.2 against 10.0 us per sample)."""
    if statements(source) > OPT_LIMIT:
        return "-O0"
    return "-O2"


def statements(source: str) -> int:
    """The statements of generated C, counted as lines ending in a semicolon, the prelude's excluded."""
    return source.count(";\n") - PRELUDE.count(";\n")


def build(source: str, fast: bool = False, outlined: bool = False, vectorized: bool = False) -> Path:
    """The shared library for ``source``, from the cache or freshly compiled into it
    (``fast``: with :data:`FAST_FLAGS`; ``outlined``: with :data:`OUTLINED_FLAGS`;
    ``vectorized``: with :data:`VECTORIZED_FLAGS`)."""
    compiler = find_compiler()
    if compiler is None:
        raise GraphcError("no C compiler found (set CC, or install gcc or clang)")
    count = statements(source)
    if count > MAX_STATEMENTS:
        raise TooLarge(f"a C function of {count:,} statements, more than the {MAX_STATEMENTS:,} graphc "
                       f"builds (a C compiler takes minutes and gigabytes, or crashes): a graph this big does not "
                       f"re-roll into layers; run it with backend='python', in bounded memory")
    cc, version = compiler
    flags = (optimization_level(source),) + (FAST_FLAGS if fast else FLAGS) + NO_BUILTINS + \
        MACHINE_FLAGS + (() if "clang" in version.lower() else GCC_FLAGS + (VECTORIZED_FLAGS if vectorized else ())) + \
        (OUTLINED_FLAGS if outlined else ()) + \
        _extra_flags()
    key = hashlib.sha256("\0".join([source, cc, version, *flags, cpu(), c_cache.FORMAT]).encode()).hexdigest()[:40]
    for attempt in range(2):
        directory = c_cache.build_dir()
        library = directory / f"graphc-{key}.so"
        if c_cache.usable(library):
            return library
        try:
            _build_into(library, source, cc, flags)
            break
        except _Vanished:
            if attempt:
                raise GraphcError(f"graphc's cache directory {directory} was removed twice while C was built "
                                  f"in it; set GRAPHC_CACHE_DIR to a directory nothing else removes") from None
    c_cache.prune(directory)
    return library


def _extra_flags() -> tuple[str, ...]:
    """``$GRAPHC_CFLAGS``, split as a shell would; unbalanced quotes are a GraphcError (the
    default backend then runs NumPy, with a warning) naming it, not shlex's ValueError."""
    text = os.environ.get("GRAPHC_CFLAGS", "")
    try:
        return tuple(shlex.split(text))
    except ValueError as error:
        raise GraphcError(f"GRAPHC_CFLAGS={text!r} cannot be split into flags as a shell would ({error})") from None


class _Vanished(Exception):
    """The build's scratch directory was removed meanwhile (the cache cleared): build again."""


def _build_into(library: Path, source: str, cc: str, flags: tuple[str, ...]) -> None:
    """Compile ``source`` in a scratch directory beside ``library`` and move the result there;
    a full disk is a GraphcError saying so (an outside hunt: it was a raw OSError, or the
    compiler's "No space left on device" called a graphc bug)."""
    try:
        _build_in_scratch(library, source, cc, flags)
    except OSError as error:
        if error.errno not in _DISK_FULL:
            raise
        raise _disk_full(library.parent, str(error)) from None


#: The errors of a full disk or quota, which graphc reports as such.
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def _disk_full(directory: Path, detail: str) -> GraphcError:
    return GraphcError(f"no space left on the disk to build C (graphc's cache directory is {directory}: free "
                       f"some space, or set GRAPHC_CACHE_DIR to a directory on another disk): {detail}")


def _build_in_scratch(library: Path, source: str, cc: str, flags: tuple[str, ...]) -> None:
    directory = library.parent
    scratch = Path(tempfile.mkdtemp(prefix="build-", dir=directory))
    try:
        (scratch / "graph.c").write_text(source)
        result = _compile(cc, flags, scratch)
        if result.returncode != 0 and scratch.is_dir():  # a compiler without -march=native: the portable build
            dropped = MACHINE_FLAGS + GCC_FLAGS + VECTORIZED_FLAGS
            result = _compile(cc, tuple(f for f in flags if f not in dropped), scratch)
        if not (scratch / "graph.c").is_file():
            raise _Vanished
        if result.returncode != 0 and os.strerror(errno.ENOSPC) in result.stderr:
            raise _disk_full(directory, result.stderr[-2000:].strip())
        if result.returncode != 0 and not _builds_anything(cc, scratch):
            raise GraphcError(f"the C compiler {cc} cannot build even an empty shared library, so it is no usable "
                              f"C compiler here (set CC to one, or use backend='numpy'); it said:\n"
                              f"{result.stderr[-2000:]}")
        if result.returncode != 0:
            raise GraphcError(f"the C compiler rejected graphc's generated code (a graphc bug):\n"
                              f"{result.stderr[-2000:]}")
        if not (scratch / "graph.so").is_file():  # else taken below for the directory removed meanwhile
            raise GraphcError(f"the C compiler {cc} succeeded but wrote no library (is $CC a C compiler?)")
        try:
            c_cache.seal(scratch / "graph.so")
            try:
                os.replace(scratch / "graph.c", library.with_suffix(".c"))  # for people to read
            except IsADirectoryError:
                pass
            os.replace(scratch / "graph.so", library)  # atomic: a concurrent build's result is the same
        except FileNotFoundError:
            raise _Vanished from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _builds_anything(cc: str, scratch: Path) -> bool:
    """Whether ``cc`` builds a shared library of an empty C file: else a failure is the
    compiler's, not graphc's code's (an outside review: a broken $CC was called a graphc bug)."""
    (scratch / "empty.c").write_text("int graphc_empty;\n")
    return _compile(cc, ("-fPIC", "-shared"), scratch, "empty").returncode == 0 and (scratch / "empty.so").is_file()


def _compile(cc: str, flags: tuple[str, ...], scratch: Path, stem: str = "graph") -> subprocess.CompletedProcess:
    """``scratch/stem.c`` built into ``scratch/stem.so``."""
    source, library = scratch / f"{stem}.c", scratch / f"{stem}.so"
    return subprocess.run([*shlex.split(cc), *flags, "-o", str(library), str(source), "-lm"], capture_output=True, text=True)


def load(source: str, entry: str, fast: bool = False, outlined: bool = False, vectorized: bool = False) -> Callable:
    """The C function ``entry`` of ``source`` (built or taken from the cache with
    :func:`build`'s options)."""
    with _lock:
        library = build(source, fast, outlined, vectorized)
        function = _open(library, entry)
        if function is None:  # pruned by another process meanwhile, or not a library graphc built
            c_cache.discard(library, f"cannot be loaded or lacks {entry}")
            function = _open(build(source, fast, outlined, vectorized), entry)
        if function is None:
            raise GraphcError(f"graphc cannot load the C library it has just built, {library}")
    function.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_double, ctypes.c_long,
                         ctypes.c_void_p, ctypes.c_void_p]
    function.restype = None
    return function


def symbol(source: str, name: str, fast: bool = False) -> int:
    """The address of the C function ``name`` of ``source``, built or taken from the cache
    (``fast``: with :data:`FAST_FLAGS`) and loaded, for C code that calls it (its library
    stays loaded for the life of the process)."""
    return ctypes.cast(load(source, name, fast), ctypes.c_void_p).value


def _open(library: Path, entry: str) -> Callable | None:
    """``entry`` of ``library``, loaded; None if the library cannot be loaded or lacks it."""
    handle = _loaded.get(str(library))
    if handle is not None:
        return getattr(handle, entry)
    try:
        handle = ctypes.CDLL(str(library))
    except OSError:
        return None
    if not hasattr(handle, entry):
        _ctypes.dlclose(handle._handle)  # else dlopen of this path would return it again
        return None
    _loaded[str(library)] = handle
    return getattr(handle, entry)
