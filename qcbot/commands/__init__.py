"""Sub-commands of ``qcbot``, one module each (see ``qcbot.cli.COMMAND_MODULES``).

Only ``qcbot.cli`` loads them; each may import every layer below the CLI.
"""
