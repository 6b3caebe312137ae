"""What each request does, as plain functions ``(session, env, req, ...) -> Out(s)``, by concern.

They run inside the one transaction ``QcContext.act`` opened, check permission with
``models.permissions.check``, call the domain and say what changed in one short line; no
Telegram objects, so the console reuses them. Imported by ``bot.handlers`` only.
"""
