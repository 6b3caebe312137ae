"""The bot as ``qcbot run`` starts it, with one difference: the clock.

``python -m bench.soak_bot`` builds the same application (``bot.app.build_application``
from the configuration and its environment overrides, then ``bot.serve.run``: polling,
the scheduler's jobs, the rate limiter) but passes ``clock=`` so that the soak can put
the bot on a working-day morning of the synthetic province whatever the wall clock says
(a real run at night or on a Sunday would only hold every nudge for quiet hours):

    now = BENCH_CLOCK_ANCHOR + (time.time() - BENCH_CLOCK_T0)

Both come from the environment; a restarted bot given the same two values continues the
same timeline.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import datetime, timedelta


def main() -> int:
    from bot.app import build_application
    from bot.serve import run
    from infra.config import load_settings
    from infra.db import make_engine
    from infra.logging_setup import configure_logging

    anchor = datetime.fromisoformat(os.environ["BENCH_CLOCK_ANCHOR"])
    t0 = float(os.environ["BENCH_CLOCK_T0"])
    if anchor.tzinfo is None:
        raise SystemExit("BENCH_CLOCK_ANCHOR must be time-zone aware")

    def clock() -> datetime:
        return anchor + timedelta(seconds=time.time() - t0)

    settings = load_settings()
    configure_logging(settings)
    engine = make_engine(settings.database.url, echo=settings.database.echo)
    app = build_application(settings=settings, engine=engine, clock=clock)
    print(f"soak bot pid {os.getpid()} at {clock().isoformat()}", flush=True)
    run(app)
    return 0


if __name__ == "__main__":
    sys.exit(main())
