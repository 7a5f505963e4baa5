"""One-off experiments whose outcome is recorded in a report; never run by ``python -m
benchmarks all``. Each module runs on its own: ``python -m benchmarks.experiments.<name>``."""
