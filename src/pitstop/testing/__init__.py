"""Public helpers for pitstop's tests and for plugin authors: clocks, services, contract suites."""
