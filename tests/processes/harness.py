"""A small driver for diagram tests: deploy, start, complete steps by element id, move time, deliver.

Every step goes through the real use cases and the database; `complete` first drops the in-memory
instance cache, so each step is restored from the stored state (save/restore on every step); an answer it
takes is also checked to be one the step's task page can send (tests/web/pagepost.py).
"""

from __future__ import annotations

from sqlalchemy import select

from tests.factories import COUNTY, OTHER_TOWNSHIP, OTHER_VILLAGE, TOWNSHIP, VILLAGE, add_elder, add_users
from tests.web.pagepost import assert_the_page_can_send
from workflows import cases, tasks, versions
from workflows.config import bpmn_dir
from workflows.models import Case, CaseEvent, Elder, HumanTask, TaskStatus

__all__ = ["COUNTY", "OTHER_TOWNSHIP", "OTHER_VILLAGE", "TOWNSHIP", "VILLAGE", "World"]


class World:
    def __init__(self, session, manual_clock):
        self.session = session
        self.clock = manual_clock
        self.users = add_users(session, prefix="t_", homes={"caseworker2": OTHER_TOWNSHIP})
        self.deployed = versions.deploy(session, None, versions.read_bundle(bpmn_dir()))

    # -- set-up

    def elder(self, *, id_number: str, name: str = "张三", village: str = VILLAGE, **flags) -> Elder:
        """Register an elder directly (diagram tests are not about the registry's checks)."""
        return add_elder(self.session, id_number=id_number, name=name, village=village, **flags)

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
