"""A hand-counted county for the supervision figures, on Wednesday 22 October 2025 (10:00 in Beijing).

October 2025 holds the National Day holiday (1–8 October, with make-up workdays on Sunday 28 September and
Saturday 11 October), so its weeks and its month are the ones the calendar makes interesting.

Two townships: 祥云镇 (410825100, village 祥云村 410825100201) and 番田镇 (410825101, village 番田村
410825101201). Elders A–H, their visiting-care enrolments and visits, cases with open tasks, adaptation
cases, waitlist entries, service months and a nursing home: every figure the tests expect is counted by
hand in the comments below, from these rows alone.
"""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from uuid import uuid4

from sqlalchemy import select

from tests.processes.harness import OTHER_VILLAGE, VILLAGE, World
from workflows.clock import LOCAL as LOCAL_ZONE
from workflows.models import Case, CaseStatus, Elder, HumanTask, ProcessVersion, Role, TaskStatus, User
from workflows.models.admission import (
    TIER_RANK,
    BedVacancy,
    EntryStatus,
    Facility,
    Tier,
    VacancyStatus,
    WaitlistEntry,
)
from workflows.models.care import (
    EnrolmentStatus,
    HomeCareEnrolment,
    HomeCareMonth,
    MonthStatus,
    Visit,
    VisitFrequency,
    VisitingEnrolment,
    VisitStatus,
)
from workflows.models.elders import LivingArrangement
from workflows.processes.visiting_care.visiting import period_of
from workflows.rules.assessment import DisabilityLevel
from workflows.rules.idnumber import compute_check_char

LOCAL = LOCAL_ZONE
NOW = datetime(2025, 10, 22, 10, 0, tzinfo=LOCAL)
TODAY = NOW.date()


def at(day: date, hour: int = 10) -> datetime:
    return datetime.combine(day, time(hour), LOCAL)


def id_number(seq: int) -> str:
    first17 = f"410825{date(1940, 1, 1) + timedelta(days=seq * 40):%Y%m%d}{seq:03d}"
    return first17 + compute_check_char(first17)


class SupervisionWorld:
    def __init__(self, session, manual_clock):
        self.world = World(session, manual_clock)
        self.session = session
        self.users = self.world.users
        s = session
        self.versions = {
            pv.process_key: pv for pv in s.scalars(select(ProcessVersion).order_by(ProcessVersion.version))
        }
        self.p1 = self._user("provider_one", Role.PROVIDER, "410825")
        self.p2 = self._user("provider_two", Role.PROVIDER, "410825")
        self.caseworker2 = self._user("caseworker_fantian", Role.CASEWORKER, "410825101")

        # Elders. Levels as of 22 October: A severe, B moderate (until 10 Nov: expiring), C mild but expired
        # on 1 Oct (so none), D never assessed, E complete (until 21 Nov: expiring, the 30th day), F intact,
        # G never assessed, H severe and in a care home (集中供养).
        self.a = self._elder(
            1, "甲老人", VILLAGE, tekun=True, home_support=True, level="severe", until=date(2026, 1, 1)
        )
        self.b = self._elder(
            2, "乙老人", VILLAGE, tekun=True, home_support=True, level="moderate", until=date(2025, 11, 10)
        )
        self.c = self._elder(3, "丙老人", VILLAGE, living_alone=True, level="mild", until=date(2025, 10, 1))
        self.d = self._elder(4, "丁老人", OTHER_VILLAGE, empty_nest=True)
        self.e = self._elder(
            5,
            "戊老人",
            OTHER_VILLAGE,
            tekun=True,
            home_support=True,
            level="complete",
            until=date(2025, 11, 21),
        )
        self.f = self._elder(
            6, "己老人", OTHER_VILLAGE, living_alone=True, level="intact", until=date(2026, 5, 1)
        )
        self.g = self._elder(7, "庚老人", VILLAGE)
        self.h = self._elder(
            8,
            "辛老人",
            OTHER_VILLAGE,
            tekun=True,
            institutional_support=True,
            level="severe",
            until=date(2026, 3, 1),
        )

        # Visiting care. October (1–31) is due for A, B, C (祥云村), D (enrolled 10 Oct) and E (ended 7 Oct):
        # 5; F starts in November, G ended in September. Visited in October: A, B, C -> 3/5; 祥云镇 3/3, 番田镇 0/2.
        # The weeks ending in October (分散供养特困 A, B, E):
        #   29 Sep–5 Oct (2 working days): A (5 Oct, a holiday Sunday), B (2 Oct, a holiday), E (29 Sep) -> 3/3
        #   6–12 Oct (3 working days: 9, 10 and the make-up Saturday 11): A (11 Oct) -> 1/3 (E is due: ended 7 Oct)
        #   13–19 Oct (5): A, B due, nobody visited -> 0/2
        #   20–26 Oct (5): A (20 Oct) -> 1/2
        # so the month's weekly figure is 5 elder-weeks visited of 10.
        weekly, monthly = VisitFrequency.WEEKLY, VisitFrequency.MONTHLY
        ea = self._enrol(self.a, weekly, date(2025, 1, 1))
        eb = self._enrol(self.b, weekly, date(2025, 9, 1))
        ec = self._enrol(self.c, monthly, date(2025, 6, 1))
        self._enrol(self.d, monthly, date(2025, 10, 10))
        ee = self._enrol(self.e, weekly, date(2025, 1, 1), ended=date(2025, 10, 7))
        self._enrol(self.f, monthly, date(2025, 11, 1))
        eg = self._enrol(self.g, monthly, date(2025, 1, 1), ended=date(2025, 9, 20))
        for enrolment, day in (
            (ea, date(2025, 10, 5)),
            (ea, date(2025, 10, 11)),
            (ea, date(2025, 10, 20)),
            (eb, date(2025, 10, 2)),
            (ec, date(2025, 10, 9)),
            (ee, date(2025, 9, 29)),
            (eg, date(2025, 9, 10)),
        ):
            self._visit(enrolment, day)

        # Cases and their open tasks. Running: home_care c1 (祥云村, township_review, due 20 Oct: overdue),
        # c2 (祥云村, county_approval, due 30 Oct), c3 (番田村, township_review, due 21 Oct: overdue);
        # home_adaptation c4 (番田村, application, no due date); admission c6 (祥云村, no open task).
        # c5 is a finished home_care case.
        self.c1 = self._case(
            "home_care", VILLAGE, self.a, tasks=[("township_review", "caseworker", date(2025, 10, 20))]
        )
        self.c2 = self._case(
            "home_care", VILLAGE, self.b, tasks=[("county_approval", "approver", date(2025, 10, 30))]
        )
        self.c3 = self._case(
            "home_care", OTHER_VILLAGE, self.d, tasks=[("township_review", "caseworker", date(2025, 10, 21))]
        )
        self.c4 = self._case(
            "home_adaptation", OTHER_VILLAGE, self.e, tasks=[("application", "village_assistant", None)]
        )
        self.c5 = self._case(
            "home_care", VILLAGE, self.c, status=CaseStatus.COMPLETED, ended=at(date(2025, 9, 1))
        )
        self.c6 = self._case("admission", VILLAGE, self.g)

        # Adaptation: paid in 2025 c7 (3000.00); paid in 2024 c8 (2500.50); ended without works in 2025 c9;
        # paid in 2022, before the 2023–2025 plan, c10. So 2025: 1 household, 3000.00; the plan: 2, 5500.50.
        self.c7 = self._adapted(VILLAGE, self.a, date(2025, 3, 10), Decimal("3000.00"))
        self.c8 = self._adapted(OTHER_VILLAGE, self.e, date(2024, 6, 1), Decimal("2500.50"))
        self.c9 = self._adapted(VILLAGE, self.b, date(2025, 5, 1), None)
        self.c10 = self._adapted(VILLAGE, self.c, date(2022, 12, 31), Decimal("1000"))

        # The waitlist of one home (10 beds, 2 vacancies open, 1 filled: occupancy 8/10). Waiting at 22 Oct:
        # special A (20 days) and B (30 days) in 祥云村; ordinary D (10 days, holding an offer) in 番田村;
        # priority F was admitted (not waiting).
        self.home = Facility(
            name="县社会福利中心", area_code="410825", beds=10, is_active=True, created_at=NOW
        )
        closed = Facility(
            name="已停办敬老院", area_code="410825101", beds=30, is_active=False, created_at=NOW
        )
        s.add_all([self.home, closed])
        s.flush()
        for label, status in (
            ("1床", VacancyStatus.OPEN),
            ("2床", VacancyStatus.OFFERED),
            ("3床", VacancyStatus.FILLED),
        ):
            s.add(
                BedVacancy(
                    facility_id=self.home.id,
                    bed_label=label,
                    vacated_on=NOW,
                    registered_at=NOW,
                    status=status,
                )
            )
        for elder, tier, applied, status in (
            (self.a, Tier.SPECIAL, date(2025, 10, 2), EntryStatus.WAITING),
            (self.b, Tier.SPECIAL, date(2025, 9, 22), EntryStatus.WAITING),
            (self.d, Tier.ORDINARY, date(2025, 10, 12), EntryStatus.OFFERED),
            (self.f, Tier.PRIORITY, date(2025, 8, 1), EntryStatus.ADMITTED),
        ):
            case = self._case("admission", elder.residence_area_code, elder)
            s.add(
                WaitlistEntry(
                    facility_id=self.home.id,
                    elder_id=elder.id,
                    case_id=case.id,
                    area_code=elder.residence_area_code,
                    tier=tier,
                    tier_rank=TIER_RANK[tier],
                    applied_at=at(applied),
                    joined_at=at(applied),
                    status=status,
                )
            )

        # Home care in October: A (provider one) meal 30, cleaning 50, meal 30; D (provider two) bathing 80;
        # C (provider one) nothing recorded yet. So meal 2 (60.00, 1 elder), cleaning 1 (50.00), bathing 1 (80.00);
        # provider one 3 services 110.00 for 1 elder, provider two 1 for 80.00; 3 months, 1 without services.
        self._month(
            self.a,
            self.p1,
            [
                ("2025-10-03", "meal", "30.00"),
                ("2025-10-10", "cleaning", "50"),
                ("2025-10-17", "meal", "30.00"),
            ],
        )
        self._month(self.d, self.p2, [("2025-10-08", "bathing", "80.00")])
        self._month(self.c, self.p1, [])
        s.flush()

    # ----------------------------------------------------------------------------------------------

    def _user(self, username: str, role: Role, area: str) -> User:
        user = User(username=username, display_name=username, role=role, area_code=area, created_at=NOW)
        self.session.add(user)
        self.session.flush()
        return user

    def _elder(
        self,
        seq: int,
        name: str,
        village: str,
        *,
        level: str | None = None,
        until: date | None = None,
        **flags,
    ) -> Elder:
        elder = self.world.elder(id_number=id_number(seq), name=name, village=village, **flags)
        if level is not None:
            elder.disability_level = DisabilityLevel(level)
            elder.disability_assessed_on = until - timedelta(days=365)
            elder.disability_valid_until = until
        if flags.get("institutional_support"):
            elder.living_arrangement = LivingArrangement.INSTITUTION
        self.session.flush()
        return elder

    def _case(
        self, key, area, elder, *, tasks=(), status=CaseStatus.RUNNING, ended=None, data=None, started=None
    ):
        pv = self.versions[key]
        started = started or at(date(2025, 10, 1))
        case = Case(
            process_version_id=pv.id,
            process_key=key,
            version_hash=pv.content_hash,
            title=f"{pv.name}：{elder.name}",
            status=status,
            area_code=area,
            elder_id=elder.id,
            state="{}",
            lock_version=uuid4().hex,
            current_step="、".join(t[0] for t in tasks),
            data=json.dumps(data or {}),
            started_at=started,
            updated_at=started,
            ended_at=ended,
        )
        self.session.add(case)
        self.session.flush()
        for spec, role, due in tasks:
            self.session.add(
                HumanTask(
                    id=str(uuid4()),
                    case_id=case.id,
                    process_key=key,
                    task_spec=spec,
                    name=spec,
                    role=role,
                    area_code=area,
                    elder_id=elder.id,
                    status=TaskStatus.READY,
                    due_at=datetime.combine(due, time(23, 59, 59), LOCAL) if due else None,
                    created_at=started,
                )
            )
        self.session.flush()
        return case

    def _adapted(self, area, elder, ended: date, paid: Decimal | None):
        data = (
            {"paid_amount": str(paid), "paid_on": ended.isoformat()}
            if paid is not None
            else {"eligible": False}
        )
        return self._case(
            "home_adaptation",
            area,
            elder,
            status=CaseStatus.COMPLETED,
            ended=at(ended),
            data=data,
            started=at(ended - timedelta(days=60)),
        )

    def _enrol(self, elder, frequency, started: date, ended: date | None = None) -> VisitingEnrolment:
        case = self._case(
            "visiting_care",
            elder.residence_area_code,
            elder,
            status=CaseStatus.COMPLETED if ended else CaseStatus.RUNNING,
            ended=at(ended) if ended else None,
        )
        enrolment = VisitingEnrolment(
            elder_id=elder.id,
            case_id=case.id,
            area_code=elder.residence_area_code,
            status=EnrolmentStatus.ENDED if ended else EnrolmentStatus.ACTIVE,
            frequency=frequency,
            categories="[]",
            started_on=started,
            next_period_start=started,
            ended_on=ended,
            created_at=NOW,
            updated_at=NOW,
        )
        self.session.add(enrolment)
        self.session.flush()
        return enrolment

    def _visit(self, enrolment: VisitingEnrolment, day: date) -> None:
        start, end = period_of(day, enrolment.frequency)
        self.session.add(
            Visit(
                enrolment_id=enrolment.id,
                elder_id=enrolment.elder_id,
                area_code=enrolment.area_code,
                period_start=start,
                period_end=end,
                status=VisitStatus.DONE,
                visited_on=day,
                created_at=NOW,
            )
        )
        self.session.flush()
        if enrolment.last_visited_on is None or day > enrolment.last_visited_on:
            enrolment.last_visited_on = day

    def _month(self, elder, provider, services) -> None:
        case = self._case(
            "home_care_month",
            elder.residence_area_code,
            elder,
            data={
                "services": [
                    {"service_date": d, "service_type": t, "minutes": 60, "amount": a, "staff_name": "护理员"}
                    for d, t, a in services
                ]
            },
        )
        enrolment = HomeCareEnrolment(
            elder_id=elder.id,
            case_id=case.id,
            area_code=elder.residence_area_code,
            status=EnrolmentStatus.ACTIVE,
            disability_level=DisabilityLevel.MODERATE,
            monthly_quota=Decimal("300.00"),
            provider_id=provider.id,
            services="[]",
            started_on=date(2025, 1, 1),
            next_month=date(2025, 11, 1),
            created_at=NOW,
            updated_at=NOW,
        )
        self.session.add(enrolment)
        self.session.flush()
        self.session.add(
            HomeCareMonth(
                enrolment_id=enrolment.id,
                month=date(2025, 10, 1),
                case_id=case.id,
                status=MonthStatus.OPEN,
                created_at=NOW,
            )
        )
        self.session.flush()
