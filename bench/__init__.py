"""Benchmarks that put getfile's figures next to the tools it should beat.

Run ``python -m bench`` (or ``bash bench/run``) from the repository root;
``--quick`` for a short try. Nothing here is imported by getfile itself, and
no test asserts a timing: speed is measured here, correctness in tests/.
"""
