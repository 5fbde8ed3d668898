"""What the care diagrams' message throws do: assessment results, home-care enrolments and months,
visiting-care enrolments, visits and the applications a visit starts. Each runs in the step's transaction."""

from .. import assessments, home_care, visiting
from . import handles

# -- assessment


@handles("record_assessment")
def record_assessment(session, case, payload, actor):
    """Store the result on the elder (level, total, validity) and close earlier cases waiting to reassess."""
    return assessments.record_result(session, case, payload, actor)


@handles("start_reassessment")
def start_reassessment(session, case, payload, actor):
    """A result is about to expire: start the next (routine) assessment."""
    return assessments.start_routine(session, case, payload)


# -- purchased home care


@handles("assign_home_care_provider")
def assign_home_care_provider(session, case, payload, actor):
    """Give the provider steps of the case to the dispatched provider."""
    return home_care.assign_provider(session, case, payload)


@handles("enrol_home_care")
def enrol_home_care(session, case, payload, actor):
    return home_care.enrol(session, case, payload)


@handles("update_home_care_enrolment")
def update_home_care_enrolment(session, case, payload, actor):
    return home_care.update_enrolment(session, case, payload)


@handles("end_home_care")
def end_home_care(session, case, payload, actor):
    return home_care.end_enrolment(session, case, payload)


@handles("settle_home_care_month")
def settle_home_care_month(session, case, payload, actor):
    return home_care.record_settlement(session, case, payload, actor)


# -- visiting care


@handles("enrol_visiting_care")
def enrol_visiting_care(session, case, payload, actor):
    return visiting.enrol(session, case, payload)


@handles("end_visiting_care")
def end_visiting_care(session, case, payload, actor):
    return visiting.end_enrolment(session, case, payload)


@handles("update_visiting_frequency")
def update_visiting_frequency(session, case, payload, actor):
    return visiting.change_frequency(session, case, payload)


@handles("visit_recorded")
def visit_recorded(session, case, payload, actor):
    return visiting.record_visit(session, case, payload, actor)


@handles("visit_overdue")
def visit_overdue(session, case, payload, actor):
    return visiting.mark_overdue(session, case, payload)


@handles("refer_home_adaptation")
def refer_home_adaptation(session, case, payload, actor):
    return visiting.refer_home_adaptation(session, case, payload, actor)


@handles("refer_home_care")
def refer_home_care(session, case, payload, actor):
    return visiting.refer_home_care(session, case, payload, actor)
