"""Support code shared by the tests and the benchmarks (``bench/`` imports it too).

It grows into the one home of waits, ports, peers and processes (see
docs/style anchors); for now it holds the link emulator, ``links``.
"""
