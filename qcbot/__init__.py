"""The roof: the ``qcbot`` command line, boot steps and the terminal console.

Nothing imports it but its own modules (and the tests); it may import every layer below.
"""

from infra import __version__

__all__ = ["__version__"]
