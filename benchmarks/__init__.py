"""Runnable benchmarks: every figure measured side by side with its anchor and reported as a ratio.

``python -m benchmarks`` (``make bench``) runs the suite; ``--quick``
(``make bench-quick``) runs it with tiny sizes as a smoke test. Figures:
allocator throughput and occupancy (:mod:`benchmarks.alloc`), range size and
exec latency (:mod:`benchmarks.startup`), link setup (:mod:`benchmarks.links`,
root only) and the etcd store (:mod:`benchmarks.etcd_alloc`, when etcd is
installed).
"""
