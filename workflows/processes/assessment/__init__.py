"""Capability assessment (老年人能力综合评估, GB/T 42195-2022): one case per assessment of an elder, asked for
by hand, started as a routine reassessment before a result expires, or called from another process (home
care calls it when the applicant has no valid result)."""

from ...registry import Choices, Process, Starter
from ...rules.assessment import ITEMS, score_descriptions
from . import assessments, demo, helpers


def _described(key: str) -> Choices:
    """An item's scores with the standard's description of each, shown by the choices."""
    options = [(score, f"{score}分：{text}") for score, text in score_descriptions(key)]
    return Choices(lambda session, case: options, widget="radio")


ASSESSMENT = Process(
    key=assessments.PROCESS_KEY,
    name="老年人能力综合评估",
    folder="assessment",
    starter=Starter(
        title="申请能力评估",
        roles=assessments.REQUEST_ROLES,
        start=assessments.start_for_elder,
        form="forms/assessment_request.json",
    ),
    step_checks={"conduct_assessment": (assessments.check_assessment_step,)},
    choices={"conduct_assessment": {f"{item.group.key}.{item.key}": _described(item.key) for item in ITEMS}},
    messages={
        # Store the result on the elder (level, total, validity); close earlier cases waiting to reassess.
        "record_assessment": assessments.record_result,
        # A result is about to expire: start the next (routine) assessment.
        "start_reassessment": lambda session, case, payload, actor: assessments.start_routine(
            session, case, payload
        ),
    },
    waits_for=("assessment_superseded",),
    provides=("elder_name", "elder_age", "assessment_reason", "schedule_reassessment", "request_note"),
    helpers={
        "assessment_outcome": helpers.assessment_outcome,
        "assessment_total": helpers.assessment_total,
    },
    demo=demo.create,
    leaving={"deceased": "elder_died"},
    data_labels=assessments.data_labels,
    already_running=assessments.already_assessing,
)

PROCESSES = (ASSESSMENT,)
