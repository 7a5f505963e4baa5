"""Benchmarks for actorsys: ``python -m benchmarks {mailbox,persist,replay,all}``.

Regenerate ``benchmarks/RESULTS.md`` (from the repository root, with the ``bench`` extra
installed, at a commit: it refuses to run from a working tree with uncommitted changes)::

    make bench ARGS="--results benchmarks/RESULTS.md"

which runs ``python -m benchmarks all --results benchmarks/RESULTS.md``: every case, on both
event loops, every variant 5 times interleaved with its baselines, every run in a fresh process,
with progress on stderr. On a 2-core machine that takes about 40 minutes (storing the replay
histories about 3, each round of runs about 7); the fsync-bound figures need a disk nobody else
is writing to. ``--quick`` scales every case down to seconds (the test suite runs it);
``--repeats N``, ``--loop``, ``--only TEXT`` and ``--isolation`` make reduced runs.

Every figure is the median of its runs (with min and max), next to a baseline measured in the
same run and interleaved with it, as a ratio of medians, together with the machine, the Python
version and the event loop. Baselines are the true minima (a bare deque drain, a Future answered
by ``call_soon``, raw ``sqlite3`` on the journal's own schema, raw appends in the file journal's
own format), looser bounds where one teaches something, a naive implementation, and peers (Pykka,
eventsourcing). The targets table is computed from the run's own records.

Modules: :mod:`benchmarks.mailbox`, :mod:`benchmarks.persist` and :mod:`benchmarks.replay` hold the
cases (one small function each) and their baselines; the ``_ours`` modules hold the actorsys
variants, imported only when a variant runs so that the harness runs without them; ``_raw`` the
raw storage code; ``_counters`` the hidden-cost counters; the ``_harness`` module runs the
variants, ``_targets`` evaluates the targets, and ``_report`` prints and writes the results.
"""
