"""Telegram: handlers parse the update, check permission, call the domain and render the answer.

It may import ``scheduler``, ``reports``, ``models`` and ``infra``; only ``qcbot`` (the CLI) imports it.
"""
