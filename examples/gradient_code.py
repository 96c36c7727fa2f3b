"""Print the optimized graph and the generated forward+gradient code of a tanh neuron.

    python examples/gradient_code.py

README.md shows this script and what it prints (docs/regenerate_readme.py keeps them equal).
"""
import graphc
from graphc import Value

w = Value(-3.0, label="w")
b = Value(6.8813735870195432, label="b")


def neuron(x1, x2):
    return (x1 * w + x2 * 2.0 + b).tanh()


compiled = graphc.compile(neuron)
out = compiled(2.0, 0.0)      # a Value, like neuron(...) would return
out.backward()                # w.grad, b.grad: the same numbers eager backward() gives
print(compiled.graph)         # the optimized graph
print(compiled.source)        # the generated forward + gradient code
print(f"out = {out.data:.4f}; w.grad = {w.grad:.4f}, b.grad = {b.grad:.4f}")
