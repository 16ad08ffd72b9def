"""The reference-style frame (baseline.py): mapping and full synthesis every frame, no fast paths.

Used by the tests (a slow second opinion on the fast paths) and the benchmarks (the speed baseline);
the renderer itself never imports it.
"""
