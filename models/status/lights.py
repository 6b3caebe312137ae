"""The traffic lights of assignments, tasks and score items, and their labels.

Traffic lights (红黄绿灯), with ``N = yellow_working_days`` and the working-day
count of :func:`models.calendar.working_days_between`:

* Assignment (a task as one unit carries it), against the task's deadline:

  - approved: green;
  - deadline passed (today is after it) and not submitted: **red** (逾期);
  - deadline passed and *submitted* but not yet approved: **yellow** (逾期待审核).
    The unit has handed its work in; what is still owed is the coordinator's
    review, not the unit's work, so it is not counted as overdue and the unit
    is not chased. It turns red again if the coordinator returns it;
  - not submitted and due within N working days (including due today): yellow
    (临近截止);
  - otherwise green (submitted before the deadline is green: 待审核).

* Task: the worst light of its (non-retired) assignments; done when every one of
  them is approved (a task with no active assignment is not done).
* Score item, against its deadline (an item with no deadline — 全过程, or none
  given — uses the end of the campaign's last phase):

  - red: the deadline passed and points were lost for it (a criterion neither
    claimed nor verified; claiming it late turns the light back);
  - yellow: points still open and due within N working days, or the deadline
    passed with claims still waiting for review;
  - otherwise green.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from enum import StrEnum

from models.calendar import working_days_between
from models.scoring import (
    Score,
)
from models.tables import (
    AssignmentState,
)

# ============================================================================ lights


class Light(StrEnum):
    green = "green"
    yellow = "yellow"
    red = "red"


LIGHT_ICONS: dict[Light, str] = {Light.green: "🟢", Light.yellow: "🟡", Light.red: "🔴"}
_RANK = {Light.green: 0, Light.yellow: 1, Light.red: 2}

LABEL_OVERDUE = "逾期"
LABEL_DUE_SOON = "临近截止"
LABEL_LATE_REVIEW = "逾期待审核"
LABEL_LOST = "逾期失分"


def worst(lights: Iterable[Light]) -> Light:
    """The worst of ``lights`` (green when there are none)."""
    return max(lights, key=_RANK.__getitem__, default=Light.green)


def assignment_light(
    *, state: AssignmentState, deadline: date, today: date, yellow_working_days: int
) -> tuple[Light, str]:
    """The light of one assignment and its label (see the module docstring)."""
    if state == AssignmentState.approved:
        return Light.green, ""
    if today > deadline:
        if state == AssignmentState.submitted:
            return Light.yellow, LABEL_LATE_REVIEW
        return Light.red, LABEL_OVERDUE
    if state == AssignmentState.submitted:
        return Light.green, ""
    if working_days_between(today, deadline) <= yellow_working_days:
        return Light.yellow, LABEL_DUE_SOON
    return Light.green, ""


def item_light(
    *, score: Score, deadline: date | None, today: date, yellow_working_days: int
) -> tuple[Light, str]:
    """The light of one score item (``score`` computed for ``today``)."""
    if deadline is None:
        return Light.green, ""
    if today > deadline:
        if score.lost_late > 0:
            return Light.red, LABEL_LOST
        if score.pending > 0:
            return Light.yellow, LABEL_LATE_REVIEW
        return Light.green, ""
    if score.open > 0 and working_days_between(today, deadline) <= yellow_working_days:
        return Light.yellow, LABEL_DUE_SOON
    return Light.green, ""
