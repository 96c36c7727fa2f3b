"""Print the generated forward+gradient code of a tiny expression: a tanh neuron.

    python examples/gradient_code.py
"""
import graphc
from graphc import Value

w = Value(-3.0, label="w")
b = Value(6.8813735870195432, label="b")


def neuron(x1, x2):
    return (x1 * w + x2 * 2.0 + b).tanh()


compiled = graphc.compile(neuron)
out = compiled(2.0, 0.0)
out.backward()
print("graph:")
print(compiled.graph)
print("\ngenerated code:")
print(compiled.source)
print(f"output {out.data:.4f}; dw = {w.grad:.4f}, db = {b.grad:.4f}")
