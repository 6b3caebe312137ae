"""Time: which nudge is due when, the outbox that remembers it, and dispatch.

It may import ``models`` and ``infra``; ``bot`` and ``qcbot`` import it.

Public API (usable without the Application)::

    sweep(engine=..., now=..., config=...)          # materialise due nudges (sync)
    await dispatch(engine=..., bot=..., now=..., config=..., pacer=...)  # send them
    await run_once(engine=..., bot=..., now=..., config=..., pacer=...)  # both
    install(application, settings=..., engine=...)  # JobQueue jobs (bot/app.py)
"""

from scheduler.dispatch import DispatchReport, dispatch
from scheduler.outbox import claim
from scheduler.pacing import Pacer
from scheduler.service import SchedulerService, install, run_once
from scheduler.sweep import SweepReport, sweep

__all__ = [
    "DispatchReport",
    "Pacer",
    "SchedulerService",
    "SweepReport",
    "claim",
    "dispatch",
    "install",
    "run_once",
    "sweep",
]
