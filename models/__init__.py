"""The domain: SQLModel tables, queries and the pure rules (scoring, progress, seed, status).

It imports only ``infra``; ``reports``, ``scheduler``, ``bot`` and ``qcbot`` import it. No Telegram, no clock.
"""
