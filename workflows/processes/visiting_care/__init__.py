"""Visiting care for vulnerable elders (特殊困难老年人探访关爱), seed 004 §二(一), §三(一).

Two processes: `visiting_care` enrols an elder (the `visit_frequency` table sets the minimum frequency,
the township confirms) and holds the enrolment until death, moving away or withdrawal; each visit period
is a short `visiting_care_visit` case opened by this package's job for the village assistant. A visit's
findings can start an application of another process for the elder (home care, home adaptation).
"""

from ... import enrolments
from ...registry import Job, Process, Starter
from . import demo, helpers, visiting

VISITING_CARE = Process(
    key=visiting.PROCESS_KEY,
    name="特殊困难老年人探访关爱",
    folder="visiting_care",
    starter=Starter(
        title="登记探访关爱对象",
        roles=visiting.ENROL_ROLES,
        start=visiting.start_for_elder,
        form="forms/enrolment_request.json",
        instructions="提交后由乡镇经办人审核纳入，并确定探访频次。",
    ),
    messages={
        "enrol_visiting_care": lambda session, case, payload, actor: visiting.enrol(session, case, payload),
        "end_visiting_care": lambda session, case, payload, actor: visiting.end_enrolment(
            session, case, payload
        ),
        "update_visiting_frequency": lambda session, case, payload, actor: visiting.change_frequency(
            session, case, payload
        ),
    },
    waits_for=("visiting_care_withdrawn",),
    provides=(
        "elder_name",
        "disability_level",
        "categories",
        "categories_label",
        "home_support",
        "living_alone",
        "empty_nest",
        "left_behind",
        "severe_handicap",
        "family_planning_special",
        "request_note",
    ),
    helpers={"stricter_frequency": helpers.stricter_frequency},
    demo=demo.create,
    leaving=enrolments.LEAVING,
    listed_as="visits",
    already_running=visiting.already_proposed,
)

VISITING_CARE_VISIT = Process(
    key=visiting.VISIT_PROCESS_KEY,
    name="探访记录",
    folder="visiting_care",
    system_started=True,
    step_checks={"record_visit": (visiting.check_visit_step,)},
    messages={
        "visit_recorded": visiting.record_visit,
        "visit_overdue": lambda session, case, payload, actor: visiting.mark_overdue(session, case, payload),
        "refer_home_adaptation": visiting.refer_home_adaptation,
        "refer_home_care": visiting.refer_home_care,
    },
    helpers={"end_of_day": enrolments.end_of_day},
    provides=(
        "enrolment_id",
        "elder_name",
        "elder_address",
        "elder_phone",
        "visit_frequency",
        "visit_frequency_label",
        "period_start",
        "period_end",
    ),
    jobs=(Job("visiting_periods", lambda session: visiting.open_due_visits(session, limit=50), order=20),),
    listed_as="visits",
)

PROCESSES = (VISITING_CARE, VISITING_CARE_VISIT)
