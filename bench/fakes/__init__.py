"""Fast loopback servers for the scale benchmark (``bench/scale``): CalDAV and ICS from generated data.

They are written for speed, not fidelity: one asyncio loop in a thread, HTTP/1.1 keep-alive,
bodies built once per change, so that what the benchmark measures is calbook, not the fake.
The Google and Microsoft fakes are the test suite's (``tests/support/fakes``), opened to many
accounts by ``bench.fakes.providers``.
"""
