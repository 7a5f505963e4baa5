"""The talk's Client entity, event-sourced, and an interactive shell over it.

Run it with ``make run`` (or ``python -m examples.client``).
"""
