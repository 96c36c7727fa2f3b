"""Contender families of bench/peers.py: graphc, JAX, PyTensor, PyTorch and micrograd on the
same workloads (bench/contenders/workloads.py), each contender timed in a fresh process."""
