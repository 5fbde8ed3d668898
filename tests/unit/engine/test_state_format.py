"""The case state our fast serializer writes restores to exactly the workflow SpiffWorkflow would restore.

`engine.state._tasks_to_dict` re-implements SpiffWorkflow's task conversion for speed (and leaves out the
parent-key lists of tasks not reached yet). These tests walk real diagrams (a call activity with its
sub-process, a loop, parallel branches, timers, messages) step by step; after every step the state is
restored and SpiffWorkflow's own converters must describe the restored workflow exactly as they describe
the original.
"""

import orjson
import pytest

from bench import engine_bench
from tests.factories import ORDER_ANSWERS
from workflows import engine, registry, versions
from workflows.engine import state

from .conftest import HERE, interop_bundle

_stock = state.make_registry(fast=False)


def _loaded(bundle: dict[str, str], key: str) -> engine.LoadedSpec:
    parsed = {p.key: p for p in registry.engine().parse_bundle(bundle)}
    return registry.engine().load_spec(parsed[key].spec_json)


def _as_json(dct) -> dict:
    return orjson.loads(state.dumps(dct))


def _walk(loaded, answers, data=None):
    instance = engine.Instance.start(loaded, data)
    yield instance
    while instance.human_steps():
        step = min(instance.human_steps(), key=lambda s: s.spec_id)
        instance.complete(step.id, answers.get(step.spec_id, {}))
        yield instance


def _assert_same_as_stock(instance, loaded):
    restored = engine.Instance.restore(loaded, instance.dump())
    assert _as_json(_stock.convert(restored._wf)) == _as_json(_stock.convert(instance._wf))
    assert restored.dump() == instance.dump()


def test_interop_call_activity_state_matches_spiffworkflow_at_every_step():
    loaded = _loaded(interop_bundle(), "order_product")
    steps = in_subprocess = 0
    for instance in _walk(loaded, ORDER_ANSWERS):
        _assert_same_as_stock(instance, loaded)
        steps += 1
        in_subprocess += bool(instance._wf.subprocesses)
    assert steps > 5 and in_subprocess and instance.completed


def test_loop_and_parallel_branches_state_matches_spiffworkflow_at_every_step():
    loaded = _loaded(versions.read_bundle(engine_bench.WORKLOADS), "bench_home_care")
    for instance in _walk(loaded, engine_bench.ANSWERS, {"months": 3}):
        _assert_same_as_stock(instance, loaded)
    assert instance.completed


@pytest.mark.parametrize("key", ["reminders", "offer_reply", "wait_for_bed"])
def test_timer_and_message_diagrams_state_matches_spiffworkflow(key):
    bundle = versions.read_bundle(HERE / "bpmn")
    loaded = _loaded(bundle, key)
    for instance in _walk(loaded, {}):
        _assert_same_as_stock(instance, loaded)
