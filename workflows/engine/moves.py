"""Moving a live instance to another version of its process, with SpiffWorkflow's own diff and migration
helpers (`SpiffWorkflow.bpmn.util.diff`): what would stand in the way, and the move itself.

A case cannot move when its history or its open work refers to what the new version no longer has: a
step it has done or is doing that was removed, an open step whose kind changed, an open step whose form
now requires fields it did not, a called process the new version no longer calls. Everything else moves:
the open steps keep their ids (so the inbox rows stay), what follows them is worked out anew from the new
diagram, and timers already running keep their deadlines.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from SpiffWorkflow.bpmn.util.diff import SpecDiff, diff_workflow, migrate_workflow
from SpiffWorkflow.util.task import TaskState

from .instance import Instance, LoadedSpec

_DONE = TaskState.COMPLETED
_OPEN = TaskState.READY | TaskState.WAITING | TaskState.STARTED
_DOING = {
    TaskState.COMPLETED: "已办理的环节",
    TaskState.READY: "正在办理的环节",
    TaskState.WAITING: "正在等待的环节",
    TaskState.STARTED: "正在进行的环节",
}


@dataclass
class MovePlan:
    """Whether an instance can move to another version, and if not, why (each reason in Chinese)."""

    reasons: list[str] = field(default_factory=list)
    changed_open_steps: list[str] = field(default_factory=list)  # element ids, for the dry run's list

    @property
    def can_move(self) -> bool:
        return not self.reasons


def _label(task) -> str:
    spec = task.task_spec
    return f"“{spec.bpmn_name or spec.name}”（{spec.bpmn_id or spec.name}）"


def plan_move(
    instance: Instance,
    new: LoadedSpec,
    old_steps: Mapping[str, dict],
    new_steps: Mapping[str, dict],
) -> MovePlan:
    """What moving `instance` to the version `new` would meet. `*_steps`: the versions' human steps."""
    workflow = instance._wf
    registry = new.serializer.registry
    plan = MovePlan()
    top, subs = diff_workflow(registry, workflow, new.spec, new.subprocess_specs)
    diffs = [(workflow, top, SpecDiff(registry, workflow.spec, new.spec))]
    for sp_id, sub_diff in subs.items():
        sub = workflow.subprocesses[sp_id]
        if sub_diff is None:
            if sub.tasks and any(t.state & (_DONE | _OPEN) for t in sub.tasks.values()):
                plan.reasons.append(f"正在调用的流程“{sub.spec.name}”在新版本中已不再调用")
            continue
        diffs.append((sub, sub_diff, SpecDiff(registry, sub.spec, new.subprocess_specs[sub.spec.name])))
    for _workflow, workflow_diff, spec_diff in diffs:
        for task in workflow_diff.removed:
            if not task.task_spec.bpmn_id:  # the engine's own joins and splits follow the elements
                continue
            doing = _DOING.get(task.state)
            if doing:
                plan.reasons.append(f"{doing}{_label(task)}在新版本中已删除")
        for task in workflow_diff.changed:
            if not task.state & _OPEN or not task.task_spec.bpmn_id:
                continue
            changes = spec_diff.changed.get(task.task_spec, [])
            if "typename" in changes:
                plan.reasons.append(f"正在办理的环节{_label(task)}在新版本中类型已改变")
                continue
            if task.task_spec.bpmn_id:
                plan.changed_open_steps.append(task.task_spec.bpmn_id)
        for task in [t for t in _workflow.get_tasks(state=TaskState.READY) if t.task_spec.manual]:
            step_id = task.task_spec.bpmn_id or task.task_spec.name
            before = _required(old_steps.get(step_id))
            after = _required(new_steps.get(step_id))
            added = sorted(after - before)
            if added:
                plan.reasons.append(
                    f"正在办理的环节{_label(task)}在新版本中表单新增了必填项（{'、'.join(added)}），已填写的表单不完整"
                )
    return plan


def _required(step: Mapping | None) -> set[str]:
    form = (step or {}).get("form") or {}
    return set(form.get("required") or [])


def move(instance: Instance, new: LoadedSpec) -> None:
    """Move the instance to `new` in place (call only when `plan_move` found nothing in the way), and run
    it to its next wait state under the new diagram."""
    workflow = instance._wf
    registry = new.serializer.registry
    top, subs = diff_workflow(registry, workflow, new.spec, new.subprocess_specs)
    # Open steps and waits are worked out anew from the new diagram (what follows them may differ), which
    # forgets when a timer was armed: keep each waiting task's own event (a timer its deadline), so that
    # moving a case never starts its timers again from now.
    armed = {
        task.id: {k: v for k, v in task.internal_data.items() if k in ("event_value", "event_fired")}
        for task in workflow.get_tasks(state=TaskState.WAITING)
    }
    for sp_id, sub_diff in subs.items():
        if sub_diff is not None:
            sub = workflow.subprocesses[sp_id]
            migrate_workflow(sub_diff, sub, new.subprocess_specs[sub.spec.name])
    migrate_workflow(top, workflow, new.spec)
    for task in workflow.get_tasks(state=TaskState.WAITING | TaskState.READY | TaskState.FUTURE):
        kept = armed.get(task.id)
        if kept:
            task.internal_data.update(kept)
    workflow.subprocess_specs = new.subprocess_specs
    # The serializer keeps finished tasks' stored form; a task aligned to another spec must be written anew.
    workflow.top_workflow.__dict__.pop("_eldercare_task_dicts", None)
    instance.run()
