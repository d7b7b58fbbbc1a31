"""Test tooling: used by the test suite and the benchmarks, never by a service.

* :mod:`dynamolog.testing.checker`: the linearizability checker for single-key register histories;
* :mod:`dynamolog.testing.workload`: the recorded concurrent load the fault tests drive.

Nothing under ``services/`` imports this package; the product is the rest of ``dynamolog``.
"""
