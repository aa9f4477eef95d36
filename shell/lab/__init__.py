"""kyoten.shell.lab: real servers on loopback, for the tests, the benchmarks and ``kyoten demo``.

Every component is started by hand from Debian's binaries (no systemd), runs under its own
account when we are root (PostgreSQL refuses root), listens on 127.0.0.1 only, and is stopped
through its pid. The same code backs the pytest fixtures and the demo, so the demo shows
exactly what the tests prove.
"""
