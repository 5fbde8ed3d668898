"""Checks for the assessment, home-care and visiting-care steps (the rules live in their domain modules)."""

from .. import cases, elders
from ..errors import ValidationFailed
from ..models import Case, Elder
from . import checks


def _case_data(session, case) -> dict:
    return cases.case_data(session.get(Case, case.id))


@checks("assessment", "conduct_assessment")
def assessment_form(session, actor, task, case, data):
    from .. import assessments

    errors = assessments.check_assessment_form(session.get(Elder, case.elder_id), data, elders.today())
    if errors:
        raise ValidationFailed("评估表填写有误，请按提示修改", field_errors=errors)


@checks("home_care", "dispatch_provider")
def provider_can_take_the_case(session, actor, task, case, data):
    from .. import home_care

    declined = _case_data(session, case).get("declined_providers")
    home_care.check_provider(session, data.get("provider_id"), case.area_code, declined)


@checks("home_care_month", "record_services")
def services_within_the_month(session, actor, task, case, data):
    from .. import home_care

    month_start = _case_data(session, case)["month_start"]
    errors = home_care.check_services(data.get("services"), month_start, elders.today())
    if errors:
        raise ValidationFailed("服务记录有误，请按提示修改", field_errors=errors)


@checks("home_care_month", "township_settlement")
def settlement_within_quota(session, actor, task, case, data):
    from .. import home_care

    errors = home_care.check_settlement(
        _case_data(session, case)["month_check"], data.get("settlement_amount")
    )
    if errors:
        raise ValidationFailed("结算金额有误", field_errors=errors)


@checks("visiting_care_visit", "record_visit")
def visit_inside_its_period(session, actor, task, case, data):
    from .. import visiting

    errors = visiting.check_visit(data, _case_data(session, case)["period_start"], elders.today())
    if errors:
        raise ValidationFailed("探访记录有误，请按提示修改", field_errors=errors)
