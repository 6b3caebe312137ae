"""The Chinese names of the states, said the same way everywhere the bot speaks."""

from __future__ import annotations

from models.tables import AssessmentState, AssignmentState, EvidenceState

#: An assignment (task × unit).
STATE_NAMES: dict[AssignmentState, str] = {
    AssignmentState.not_started: "未开始",
    AssignmentState.in_progress: "进行中",
    AssignmentState.submitted: "已提交",
    AssignmentState.approved: "已通过",
}

#: A sub-criterion's assessment.
ASSESSMENT_NAMES: dict[AssessmentState, str] = {
    AssessmentState.none: "未申报",
    AssessmentState.claimed: "已申报待审核",
    AssessmentState.verified: "已确认达标",
    AssessmentState.rejected: "已驳回",
}

#: A piece of evidence.
EVIDENCE_NAMES: dict[EvidenceState, str] = {
    EvidenceState.submitted: "待审核",
    EvidenceState.accepted: "已通过",
    EvidenceState.returned: "已退回",
    EvidenceState.withdrawn: "已撤回",
}
