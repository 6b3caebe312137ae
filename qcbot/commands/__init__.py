"""Sub-commands of ``qcbot`` (see ``qcbot.cli.COMMAND_MODULES``)."""
