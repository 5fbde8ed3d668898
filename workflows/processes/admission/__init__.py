"""Public nursing-home admission from a waitlist (公办养老机构入住评估和轮候), seed 004 §二(三), §三(三).

An application is verified and joins its facility's queue in its tier; when a bed frees up the next
applicant is offered it (within 2 days), comes for the admission assessment (within 5 working days) or
passes, and repeated refusals remove the applicant. Every offer, skip and reason is recorded.
"""

from ...registry import Job, Process, Starter
from . import demo, handlers, helpers, notices, waitlist

LEAVES = "admission_withdrawn"  # the case withdraws its application when the elder leaves the register

ADMISSION = Process(
    key=waitlist.PROCESS_KEY,
    name="公办养老机构入住评估和轮候",
    folder="admission",
    starter=Starter(
        title="公办养老机构入住申请",
        roles=frozenset(waitlist.APPLY_ROLES),
        start=waitlist.start_for_elder,
        form="forms/application.json",
        fill=waitlist.application_form,
        instructions="户籍、困难类别和能力等级取自老人档案；请当面核实以下情况后受理。",
    ),
    refusals={"admission_application_refused": waitlist.refuse_application},
    messages={
        "waitlist_join": handlers.join_waitlist,
        "waitlist_notify": handlers.notify_applicant,
        "waitlist_arrival": handlers.record_arrival,
        "waitlist_offer_lapsed": handlers.offer_lapsed,
        "waitlist_removed": handlers.removed,
        "waitlist_unsuitable": handlers.unsuitable,
        "waitlist_admitted": handlers.admitted,
        "waitlist_leave": handlers.leave,
    },
    waits_for=("bed_vacated", LEAVES),
    provides=(
        "applied_at",
        "elder_name",
        "elder_age",
        "facility_id",
        "facility_name",
        "hukou_type",
        "tekun",
        "dibao",
        "near_dibao",
        "disability_level",
        "entitled_veteran_family",
        "family_planning_special",
    ),
    helpers={"waitlist_refusal_limit_reached": helpers.waitlist_refusal_limit_reached},
    jobs=(Job("admission_offers", waitlist.offer_and_reconcile, order=30),),
    demo=demo.create,
    leaving={"deceased": LEAVES, "moved_away": LEAVES},
    notices={"admission_offer": notices.offer_notice_facts},
    calendar_change=waitlist.recount_offers,
    already_running=waitlist.already_applied,
)

PROCESSES = (ADMISSION,)
