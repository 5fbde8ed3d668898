"""Home adaptation (家庭适老化改造), seeds 000 #18, 001 #22, 003 (十六): application, township and county review,
home assessment, a priced plan per household (一户一策), public notice with objections, works, acceptance,
subsidy payment up to the cap, call-back and the household file (一户一档)."""

from ...registry import Process, Starter
from . import adaptation, demo, helpers, notices

HOME_ADAPTATION = Process(
    key=adaptation.PROCESS_KEY,
    name="家庭适老化改造",
    folder="home_adaptation",
    starter=Starter(
        title="家庭适老化改造申请",
        roles=frozenset(adaptation.START_ROLES),
        start=lambda session, actor, elder, data: adaptation.start_application(session, actor, elder.id),
        instructions="发起后按老人档案预填申请表，请在下一步核对并补充材料。",
    ),
    refusals={
        "adaptation_application_refused": adaptation.refuse_application,
        "adaptation_plan_refused": adaptation.refuse_plan,
        "adaptation_payment_refused": adaptation.refuse_payment,
    },
    waits_for=("adaptation_objection",),
    provides=(
        "elder_name",
        "elder_age",
        "household_category",
        "disability_level",
        "handicapped",
        "address",
        "contact_phone",
    ),
    helpers={
        "price_adaptation_plan": helpers.price_adaptation_plan,
        "adaptation_payment_matches": helpers.adaptation_payment_matches,
        "adaptation_notice_period": helpers.adaptation_notice_period,
    },
    demo=demo.create,
    notices={"public_list": notices.public_list_facts},
    already_running=adaptation.already_applied,
)

PROCESSES = (HOME_ADAPTATION,)
