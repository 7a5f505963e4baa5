"""Benchmarks for actorsys: ``python -m benchmarks {mailbox,persist,replay,all}``.

Every figure is measured next to a baseline in the same run (the limit the machine allows, a naive
implementation, a peer library) and reported as a ratio, together with the machine, the Python
version and the event loop. ``--quick`` scales every case down to seconds for CI smoke runs.

Modules: :mod:`benchmarks.mailbox`, :mod:`benchmarks.persist` and :mod:`benchmarks.replay` hold the
cases (one small function each) and their baselines; the ``_ours`` modules hold the actorsys
variants, imported only when a variant runs so that the harness runs without them; the
``_harness`` module runs cases on each event loop, and ``_report`` prints and writes the results.
"""
