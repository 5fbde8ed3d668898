"""Government-purchased home care for low-income disabled elders (政府为经济困难失能老年人购买居家养老服务).

Two processes: `home_care` takes an application through eligibility, the capability assessment, the
township's review and the county's approval, dispatches a provider and holds the enrolment; every
service month is then a short `home_care_month` case, opened by this package's job: the provider records
the 六助 it delivered, the township checks, calls back and settles.
"""

from ... import enrolments
from ...registry import Choices, Job, Process, Starter
from ..assessment import helpers as assessment_helpers
from . import demo, enrolment, helpers, months

HOME_CARE = Process(
    key=enrolment.PROCESS_KEY,
    name="政府购买居家养老服务",
    folder="home_care",
    starter=Starter(
        title="居家养老服务申请",
        roles=enrolment.APPLY_ROLES,
        start=enrolment.start_for_elder,
        form="forms/home_care_application.json",
        instructions="请核实老人身份证件和困难证明后填写。提交后系统核对困难类别；无有效能力评估的，转评估员入户评估。",
        check=enrolment.application_errors,
    ),
    step_checks={"dispatch_provider": (enrolment.check_dispatch,)},
    choices={"dispatch_provider": {"provider_id": Choices(enrolment.provider_options, "服务机构")}},
    messages={
        # Give the provider steps of the case to the dispatched provider.
        "assign_home_care_provider": lambda session, case, payload, actor: enrolment.assign_provider(
            session, case, payload
        ),
        "enrol_home_care": lambda session, case, payload, actor: enrolment.enrol(session, case, payload),
        "update_home_care_enrolment": lambda session, case, payload, actor: enrolment.update_enrolment(
            session, case, payload
        ),
        "end_home_care": lambda session, case, payload, actor: enrolment.end_enrolment(
            session, case, payload
        ),
    },
    waits_for=("home_care_withdrawn",),
    provides=(
        "applicant_type",
        "applicant_name",
        "applicant_relation",
        "applicant_phone",
        "requested_services",
        "requested_services_label",
        "application_note",
        "elder_name",
        "elder_age",
        "age",
        "household",
        "household_label",
        "disability_level",
        "disability_level_label",
        "assessment_valid_until",
        "assessment_reason",
        "schedule_reassessment",
        "applied_on",
        "declined_providers",
    ),
    helpers={"reassessment_due_at": assessment_helpers.reassessment_due_at},
    demo=demo.create,
    leaving=enrolments.LEAVING,
    data_labels=enrolment.data_labels,
    already_running=enrolment.already_applied,
)

HOME_CARE_MONTH = Process(
    key=months.MONTH_PROCESS_KEY,
    name="居家上门服务月度记录与结算",
    folder="home_care",
    system_started=True,
    step_checks={
        "record_services": (months.check_services_step,),
        "township_settlement": (months.check_settlement_step,),
    },
    messages={"settle_home_care_month": months.record_settlement},
    helpers={
        "month_service_check": helpers.month_service_check,
        "month_without_records": helpers.month_without_records,
        "callback_needed": helpers.callback_needed,
        "end_of_day": enrolments.end_of_day,
    },
    provides=(
        "enrolment_id",
        "elder_name",
        "disability_level",
        "disability_level_label",
        "provider_id",
        "provider_name",
        "month_start",
        "month_end",
        "month_label",
    ),
    jobs=(Job("home_care_months", lambda session: months.open_due_months(session, limit=50), order=20),),
)

PROCESSES = (HOME_CARE, HOME_CARE_MONTH)
