"""Code generators: one module per backend, each turning a Graph into source text.

``python`` emits plain CPython functions; :mod:`.loader` compiles any generated Python
source into a fresh namespace and registers it so tracebacks and ``inspect`` show it.
"""
