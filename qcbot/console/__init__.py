"""``qcbot console``: the real bot in a terminal chat, against a local stand-in of Telegram.

Only ``qcbot.commands.console`` and ``qcbot.boot`` import it; it may import every layer.
"""
