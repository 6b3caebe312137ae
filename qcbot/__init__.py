"""qcbot: the application shell (configuration, command line, wiring)."""

__version__ = "0.1.0"
