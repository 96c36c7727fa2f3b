"""Code generators: one module per backend, each a spelling table and a writer over a Graph.

``python`` emits plain CPython functions (spelled with :mod:`.python_floats`), ``numpy``
one function over a batch of rows, ``c`` a C99 function built and loaded through ctypes
(:mod:`.c_writer`, :mod:`.c_blocks`, :mod:`.c_runtime`, :mod:`.c_toolchain`, :mod:`.c_cache`).  What the
writers share is in :mod:`.common`; :mod:`.loader` compiles generated Python source into a
fresh namespace and registers it so tracebacks and ``inspect`` show it.
"""
