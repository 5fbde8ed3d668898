"""What the admission offer letter (入住通知) says: the bed, the home, the tier and the deadline to come."""

from sqlalchemy.orm import Session

from ... import notices
from ...models import Case
from ...models.admission import TIER_LABELS, BedVacancy, Facility
from . import waitlist


def offer_notice_facts(session: Session, case: Case, payload: dict, step: str | None) -> dict:
    values = notices.case_values(session, case)
    offer = waitlist.offer_for_case(session, case, payload.get("offer_id"))
    vacancy = session.get(BedVacancy, offer.vacancy_id)
    facility = session.get(Facility, vacancy.facility_id)
    entry = waitlist.entry_for_case(session, case)
    values.update(
        facility=facility.name,
        bed=vacancy.bed_label,
        respond_by=waitlist.date_text(offer.respond_by),
        tier=TIER_LABELS[entry.tier],
        place=facility.address or facility.name,
        phone=facility.phone or "",
    )
    facts = [
        ["申请人", values["elder_name"]],
        ["身份证号", values["id_number"]],
        ["入住机构", facility.name],
        ["床位", vacancy.bed_label],
        ["轮候类别", values["tier"]],
        ["到场期限", values["respond_by"]],
    ]
    return {"values": values, "facts": facts}
