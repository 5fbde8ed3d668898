"""A small driver for diagram tests: deploy, start, complete steps by element id, move time, deliver.

Every step goes through the real use cases and the database; `complete` first drops the in-memory
instance cache, so each step is restored from the stored state (save/restore on every step); an answer it
takes is also checked to be one the step's task page can send (tests/web/pagepost.py).
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from tests.web.pagepost import assert_the_page_can_send
from workflows import cases, processes, tasks
from workflows.config import bpmn_dir
from workflows.models import Area, AreaLevel, Case, CaseEvent, Elder, HumanTask, Role, TaskStatus, User
from workflows.models.elders import HukouType, LivingArrangement, Sex

COUNTY, TOWNSHIP, VILLAGE = "410825", "410825100", "410825100201"
OTHER_TOWNSHIP, OTHER_VILLAGE = "410825101", "410825101201"


class World:
    def __init__(self, session, manual_clock):
        self.session = session
        self.clock = manual_clock
        self._areas()
        self.users = {role.value: self._user(role) for role in Role}
        self.deployed = processes.deploy(session, None, processes.read_bundle(bpmn_dir()))

    # -- set-up

    def _areas(self):
        s = self.session
        if s.get(Area, COUNTY) is None:
            s.add(Area(code=COUNTY, name="温县", level=AreaLevel.COUNTY))
            s.add(Area(code=TOWNSHIP, name="祥云镇", level=AreaLevel.TOWNSHIP, parent_code=COUNTY))
            s.add(Area(code=OTHER_TOWNSHIP, name="番田镇", level=AreaLevel.TOWNSHIP, parent_code=COUNTY))
            s.add(Area(code=VILLAGE, name="祥云村", level=AreaLevel.VILLAGE, parent_code=TOWNSHIP))
            s.add(
                Area(code=OTHER_VILLAGE, name="番田村", level=AreaLevel.VILLAGE, parent_code=OTHER_TOWNSHIP)
            )
            s.flush()

    def _user(self, role: Role) -> User:
        area = {Role.VILLAGE_ASSISTANT: VILLAGE, Role.CASEWORKER: TOWNSHIP}.get(role, COUNTY)
        user = User(username=f"t_{role.value}", display_name=role.value, role=role, area_code=area)
        self.session.add(user)
        self.session.flush()
        return user

    def elder(self, *, id_number: str, name: str = "张三", village: str = VILLAGE, **flags) -> Elder:
        """Register an elder directly (diagram tests are not about the registry's checks)."""
        from workflows.rules.idnumber import parse_id_number

        info = parse_id_number(id_number, today=date(2025, 6, 2))
        elder = Elder(
            id_number=info.number,
            name=name,
            sex=Sex(info.sex),
            birth_date=info.birth_date,
            hukou_type=flags.pop("hukou_type", HukouType.RURAL),
            residence_area_code=village,
            address=flags.pop("address", "祥云村1组"),
            living_arrangement=flags.pop("living_arrangement", LivingArrangement.WITH_SPOUSE),
            created_at=self.clock(),
            updated_at=self.clock(),
            **flags,
        )
        self.session.add(elder)
        self.session.flush()
        return elder

    # -- driving

    def start(
        self,
        key: str,
        *,
        as_role: str = "caseworker",
        elder: Elder | None = None,
        data=None,
        area_code: str | None = None,
    ) -> Case:
        return cases.start_case(
            self.session,
            self.users[as_role],
            key,
            area_code=area_code or (elder.residence_area_code if elder else TOWNSHIP),
            elder_id=elder.id if elder else None,
            data=data,
        )

    def ready(self, case: Case) -> list[HumanTask]:
        self.session.expire_all()
        return list(
            self.session.scalars(
                select(HumanTask)
                .where(HumanTask.case_id == case.id, HumanTask.status == TaskStatus.READY)
                .order_by(HumanTask.created_at, HumanTask.task_spec)
            )
        )

    def ready_specs(self, case: Case) -> list[str]:
        return sorted(t.task_spec for t in self.ready(case))

    def complete(
        self,
        case: Case,
        spec_id: str,
        data: dict | None = None,
        *,
        as_role: str | None = None,
        comment: str | None = None,
    ) -> cases.Outcome:
        """Complete the READY task `spec_id` of the case, restoring the instance from the database first."""
        matches = [t for t in self.ready(case) if t.task_spec == spec_id]
        assert matches, f"{spec_id} is not ready; ready: {self.ready_specs(case)}"
        task = matches[0]
        actor = self.users[as_role or task.role or "caseworker"]
        cases.forget_live_instances()
        outcome = tasks.complete(self.session, actor, task.id, data or {}, comment=comment)
        # An answer the use case took is one a user must be able to give on the task page too.
        step = cases.runtime_of(self.session, case).steps.get(spec_id, {})
        assert_the_page_can_send(step.get("form"), step.get("ui_form"), data or {})
        return outcome

    def advance(self, **delta) -> int:
        """Move the clock and fire what came due; return how many cases moved."""
        self.clock.advance(**delta)
        cases.forget_live_instances()
        return cases.run_due_timers(self.session)

    def deliver(self, name: str, payload: dict | None = None, **kwargs) -> list[int]:
        cases.forget_live_instances()
        return cases.deliver_message(self.session, name, payload or {}, **kwargs)

    def refresh(self, case: Case) -> Case:
        self.session.expire_all()
        return self.session.get(Case, case.id)

    def events(self, case: Case) -> list[CaseEvent]:
        return list(
            self.session.scalars(
                select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.seq)
            )
        )

    def data(self, case: Case) -> dict:
        return cases.case_data(self.refresh(case))
