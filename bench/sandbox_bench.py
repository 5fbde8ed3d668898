"""Sandbox benchmark: the cost of running diagram code under limits (workflows.engine.sandbox).

1. Per evaluation. The shipped diagrams' real code with real data. Every script, pre/post script,
   gateway condition, timer expression and DMN expression is extracted from bpmn/**/*.bpmn and *.dmn;
   to give each its real task data, the shipped diagrams are then driven while every call the engine
   makes to its script environment is recorded with the task data of that moment: by default through
   tests/processes (one test per path through each shipped diagram, on SQLite; about a minute), with
   --demo through the demo data instead (`eldercare init-db --demo`, a few seconds, fewer paths). DMN
   cells are recorded in the form the DMN engine evaluates them (`(input) == (entry)`). Up to 5 recorded
   calls per distinct source are replayed many times through the sandbox and through bare Python
   (`eval`/`exec` with the same helpers, no limits: a yardstick, not something to run diagrams with),
   interleaved in rounds; both must give the same results. Printed: how many extracted sources the
   recording reached, µs per evaluation (expressions and scripts apart), and the ratio to bare Python.
   (What a whole engine step costs with the sandbox is `eldercare bench engine`, before and after.)
2. A runaway step. One thread starts a case whose script is `while True: pass`, under the default limits;
   this thread meanwhile completes unrelated steps: when the runaway step fails, and the unrelated
   steps' latency, against the same steps alone.

    python -m bench.sandbox_bench [--demo] [--rounds 5] [--reps 50] [--cases 40]

The last line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree

from workflows import config, demo, processes, registry, schema, versions
from workflows.db import make_engine, session_factory
from workflows.engine import Instance
from workflows.engine.sandbox import Sandbox

STANDARD = ("Decimal", "date", "datetime", "timedelta")
REPO = Path(__file__).resolve().parent.parent
PER_SOURCE = 5  # recorded calls kept per distinct source


@dataclass
class Call:
    mode: str  # "eval" or "exec"
    source: str
    context: dict
    external: dict | None


def shipped_sources() -> set[tuple[str, str]]:
    """(mode, source) of every piece of code in the shipped diagrams and decision tables."""
    found = set()
    bpmn = "{http://www.omg.org/spec/BPMN/20100524/MODEL}"
    for path in sorted(config.bpmn_dir().rglob("*.bpmn")):
        xml = etree.parse(str(path))
        for node in xml.iter(f"{bpmn}script", "{*}preScript", "{*}postScript"):
            found.add(("exec", (node.text or "").strip()))
        for tag in ("conditionExpression", "timeDuration", "timeDate", "timeCycle"):
            found.update(("eval", (node.text or "").strip()) for node in xml.iter(f"{bpmn}{tag}"))
    for path in sorted(config.bpmn_dir().rglob("*.dmn")):
        for node in etree.parse(str(path)).iter("{*}inputExpression", "{*}inputEntry", "{*}outputEntry"):
            found.add(("eval", (node.findtext("{*}text") or "").strip()))
    return {(mode, text) for mode, text in found if text and text != "-"}


def reached(source: tuple[str, str], recorded: set[tuple[str, str]]) -> bool:
    """Whether a recorded call evaluated this source: as it is, or (a DMN cell) inside the form the DMN
    engine evaluates, `(input) == (entry)` or the entry with `?` replaced by the input's value."""
    if source in recorded:
        return True
    mode, text = source
    forms = (f"({text})", text.replace("?", "dmninputexpr"), f"{text})")
    return mode == "eval" and any(form in other for _, other in recorded for form in forms)


@contextmanager
def recording() -> Any:
    """Record every call the engine makes to its script environment, with a copy of its task data."""
    env = registry.engine().sandbox
    calls: list[Call] = []
    original_evaluate, original_execute = env.evaluate, env.execute

    def evaluate(expression, context, external_context=None):
        calls.append(Call("eval", expression, copy.deepcopy(context), copy.deepcopy(external_context)))
        return original_evaluate(expression, context, external_context)

    def execute(script, context, external_context=None):
        calls.append(Call("exec", script, copy.deepcopy(context), copy.deepcopy(external_context)))
        return original_execute(script, context, external_context)

    env.evaluate, env.execute = evaluate, execute
    try:
        yield calls
    finally:
        del env.evaluate, env.execute


def drive_path_tests() -> None:
    """Run tests/processes (every path through every shipped diagram) in this process, on SQLite only."""
    import pytest

    saved = os.environ.pop("ELDERCARE_TEST_PG_URL", None)
    try:
        code = pytest.main([str(REPO / "tests" / "processes"), "-q", "-p", "no:cacheprovider", "--no-header"])
    finally:
        if saved is not None:
            os.environ["ELDERCARE_TEST_PG_URL"] = saved
    if code != 0:
        raise SystemExit(
            f"tests/processes failed (exit {code}): the recording would not be the shipped paths"
        )


def drive_demo() -> None:
    """Load the demo (the shipped processes driven through the real use cases) on a throw-away database."""
    with tempfile.TemporaryDirectory() as folder:
        db = make_engine(f"sqlite:///{folder}/record.sqlite")
        try:
            schema.upgrade(db)
            make = session_factory(db)
            with make.begin() as session:
                versions.deploy(session, None, versions.read_bundle(config.bpmn_dir()))
            with make.begin() as session:
                demo.load_demo(session, "bench-only-password")
        finally:
            db.dispose()


def record_shipped_calls(drive: Callable[[], None]) -> list[Call]:
    with recording() as calls:
        drive()
    return list(calls)


def sample(calls: list[Call]) -> list[Call]:
    kept: dict[tuple[str, str], list[Call]] = {}
    for call in calls:
        group = kept.setdefault((call.mode, call.source), [])
        if len(group) < PER_SOURCE:
            group.append(call)
    return [call for group in kept.values() for call in group]


def make_sandbox() -> Sandbox:
    return Sandbox(helpers={k: v for k, v in registry.engine().helpers.items() if k not in STANDARD})


class BarePython:
    """The yardstick: the same helpers and data semantics, plain `eval`/`exec`, no limits and no checks."""

    def __init__(self, helpers: dict):
        self.helpers = helpers

    def evaluate(self, expression, context, external_context=None):
        return eval(expression.strip(), {**self.helpers, **(external_context or {}), **context})  # noqa: S307

    def execute(self, script, context, external_context=None):
        scope = {**self.helpers, **(external_context or {}), **context}
        exec(script, scope)  # noqa: S102 - the yardstick runs only recorded shipped code
        context.update({k: v for k, v in scope.items() if k not in self.helpers and not k.startswith("__")})


def outcome(evaluator, call: Call) -> Any:
    context = dict(call.context)
    try:
        if call.mode == "eval":
            return ("value", evaluator.evaluate(call.source, context, call.external))
        evaluator.execute(call.source, context, call.external)
        return ("data", context)
    except Exception:  # noqa: BLE001 - a call failing in both is the same result (the error types differ)
        return ("error",)


def replay(evaluator, calls: list[Call], reps: int) -> float:
    """Seconds for `reps` passes over the calls (each with a fresh shallow copy of its task data)."""
    started = time.perf_counter()
    for _ in range(reps):
        for call in calls:
            context = dict(call.context)
            try:
                if call.mode == "eval":
                    evaluator.evaluate(call.source, context, call.external)
                else:
                    evaluator.execute(call.source, context, call.external)
            except Exception:  # noqa: BLE001, S112 - failing calls (a DMN row not matching a type) cost too
                continue
    return time.perf_counter() - started


def copying(calls: list[Call], reps: int) -> float:
    started = time.perf_counter()
    for _ in range(reps):
        for call in calls:
            dict(call.context)
    return time.perf_counter() - started


def measure_calls(calls: list[Call], rounds: int, reps: int, log=print) -> dict:
    sandbox = make_sandbox()
    today = BarePython(dict(sandbox.helpers))
    different = [c.source for c in calls if outcome(today, c) != outcome(sandbox, c)]
    result: dict[str, Any] = {"calls_replayed": len(calls), "results_differ": len(different)}
    if different:
        log(f"results differ for {len(different)} calls, e.g. {different[:3]}")
    for kind in ("eval", "exec"):
        chosen = [c for c in calls if c.mode == kind]
        if not chosen:
            continue
        old, new = [], []
        for _ in range(rounds):
            base = copying(chosen, reps)
            old.append((replay(today, chosen, reps) - base) / (reps * len(chosen)) * 1e6)
            new.append((replay(sandbox, chosen, reps) - base) / (reps * len(chosen)) * 1e6)
        name = "expressions" if kind == "eval" else "scripts"
        result[name] = {
            "calls": len(chosen),
            "distinct_sources": len({c.source for c in chosen}),
            "bare_python_us": round(statistics.median(old), 2),
            "sandbox_us": round(statistics.median(new), 2),
            "ratio": round(statistics.median(n / o for n, o in zip(new, old, strict=True)), 3),
        }
        log(
            f"{name}: {len(chosen)} calls ({result[name]['distinct_sources']} distinct), "
            f"bare Python {result[name]['bare_python_us']} µs, sandbox {result[name]['sandbox_us']} µs, "
            f"ratio {result[name]['ratio']}"
        )
    return result


RUNAWAY_BPMN = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="runaway_definitions"
    targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="runaway" name="死循环" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>to_spin</bpmn:outgoing></bpmn:startEvent>
    <bpmn:scriptTask id="spin" name="死循环"><bpmn:incoming>to_spin</bpmn:incoming><bpmn:outgoing>to_end</bpmn:outgoing>
      <bpmn:script>while True: pass</bpmn:script></bpmn:scriptTask>
    <bpmn:endEvent id="end"><bpmn:incoming>to_end</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="to_spin" sourceRef="start" targetRef="spin" />
    <bpmn:sequenceFlow id="to_end" sourceRef="spin" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>"""


def measure_runaway(log=print) -> dict:
    """One thread starts a case whose script loops forever; meanwhile this thread completes unrelated steps.

    Reports when the runaway step failed (from its start) and the latency of the unrelated steps meanwhile,
    against the same steps with nothing else running. The limits are the defaults (or ELDERCARE_SCRIPT_*).
    """
    import threading

    from bench import engine_bench

    the_engine = registry.engine()
    sandbox = the_engine.sandbox
    (parsed,) = the_engine.parse_bundle({"runaway.bpmn": RUNAWAY_BPMN})
    runaway_spec = the_engine.load_spec(parsed.spec_json)
    normal_spec = engine_bench._spec("bench_home_care")
    outcome: dict[str, Any] = {}
    started = threading.Event()

    def step_latencies(stop: Callable[[], bool]) -> list[float]:
        latencies = []
        while not stop():
            inst = Instance.start(normal_spec, {"months": 3})
            while not inst.completed and not stop():
                step = inst.human_steps()[0]
                t0 = time.perf_counter()
                inst.complete(step.id, engine_bench.ANSWERS[step.spec_id])
                latencies.append(time.perf_counter() - t0)
        return latencies

    def runaway() -> None:
        started.set()
        t0 = time.perf_counter()
        try:
            Instance.start(runaway_spec)
            outcome["error"] = "none"
        except Exception as exc:  # noqa: BLE001 - what the caller sees is the figure
            outcome["error"] = str(exc)[:160]
        outcome["seconds"] = time.perf_counter() - t0

    quiet_end = time.perf_counter() + 2.0
    alone = step_latencies(lambda: time.perf_counter() > quiet_end)
    thread = threading.Thread(target=runaway)
    thread.start()
    started.wait()
    beside = step_latencies(lambda: not thread.is_alive())
    thread.join()

    def pct(values: list[float], q: float) -> float:
        return round(sorted(values)[min(len(values) - 1, int(q * len(values)))] * 1000, 2)

    result = {
        "limit_seconds": sandbox.limits.seconds,
        "runaway_failed_after_s": round(outcome["seconds"], 3),
        "runaway_error": outcome["error"],
        "unrelated_steps_meanwhile": len(beside),
        "unrelated_step_ms_p50_p95_max": [pct(beside, 0.5), pct(beside, 0.95), round(max(beside) * 1000, 2)],
        "same_steps_alone_ms_p50_p95_max": [pct(alone, 0.5), pct(alone, 0.95), round(max(alone) * 1000, 2)],
    }
    log(
        f"runaway step failed after {result['runaway_failed_after_s']} s (limit {result['limit_seconds']} s); "
        f"{len(beside)} unrelated steps meanwhile, p50/p95/max {result['unrelated_step_ms_p50_p95_max']} ms "
        f"(alone {result['same_steps_alone_ms_p50_p95_max']} ms)"
    )
    return result


def run(rounds: int = 5, reps: int = 50, n_cases: int = 40, use_demo: bool = False, log=print) -> dict:
    sources = shipped_sources()
    how = "the demo data" if use_demo else "tests/processes (every path, SQLite)"
    log(f"{len(sources)} scripts and expressions in bpmn/; recording their evaluations through {how} ...")
    calls = record_shipped_calls(drive_demo if use_demo else drive_path_tests)
    recorded = {(c.mode, c.source.strip()) for c in calls}
    covered = sum(reached(s, recorded) for s in sources)
    log(f"recorded {len(calls)} calls; {covered} of the {len(sources)} extracted sources were evaluated")
    result = {
        "recording": "demo" if use_demo else "tests/processes",
        "shipped_sources": len(sources),
        "shipped_sources_evaluated": covered,
        "per_evaluation": measure_calls(sample(calls), rounds, reps, log),
    }
    result["runaway"] = measure_runaway(log)
    return result


if __name__ == "__main__":
    processes.install()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--demo", action="store_true", help="record through the demo data (quicker, fewer paths)"
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--reps", type=int, default=50)
    parser.add_argument("--cases", type=int, default=40)
    args = parser.parse_args()
    print(json.dumps(run(args.rounds, args.reps, args.cases, args.demo), ensure_ascii=False))
