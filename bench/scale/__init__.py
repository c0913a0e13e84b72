"""The scale benchmark of issue 15: thousands of experts' calendars kept fresh on one deployment.

Run it with ``.venv/bin/python -m bench.scale`` (``--quick`` for a small smoke run); what it
starts, seeds, drives and reports is in ``bench/scale/__main__.py``, the capacity plan built
on its numbers in docs/scaling.md.
"""
