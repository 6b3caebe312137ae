"""qcbot's domain: tables, queries and the pure rules. No Telegram, no clock."""
