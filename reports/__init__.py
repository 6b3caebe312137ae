"""Renderings of the domain's data: the chat text of /status and the views, the charts (and their
worker process), the ledger workbook and the evidence dossier. Imported by ``scheduler``, ``bot``, ``qcbot``.
"""
