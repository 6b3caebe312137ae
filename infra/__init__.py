"""The base layer: configuration, logging, files, the database engine, migrations and backups.

Everything may import it; it imports nothing of qcbot's other packages.
"""

__version__ = "0.1.0"
