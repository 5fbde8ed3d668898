"""Guards for the two measured SpiffWorkflow traps (shared notes): jsonb key order, and deep loops."""

from sqlalchemy import Text, select, text

from workflows import cases, engine, tasks
from workflows.models import Case, HumanTask, TaskStatus

from .conftest import TOWNSHIP


def test_case_state_is_plain_text_in_the_database(session):
    # jsonb reorders keys and SpiffWorkflow 3.2 then silently drops task data: never store state as jsonb.
    assert isinstance(Case.__table__.c.state.type, Text)
    if session.get_bind().dialect.name == "postgresql":
        kind = session.execute(
            text(
                "select data_type from information_schema.columns where table_name='cases' and column_name='state'"
            )
        ).scalar_one()
        assert kind == "text"


def test_case_state_is_compressed_with_lz4_on_postgresql(session):
    # Written on every step: lz4 is the faster of PostgreSQL's two compressions (when the server has it).
    if session.get_bind().dialect.name != "postgresql":
        return
    supported = session.execute(
        text("select 'lz4' = any(enumvals) from pg_settings where name = 'default_toast_compression'")
    ).scalar()
    methods = session.execute(
        text(
            "select attname, attcompression from pg_attribute "
            "where attrelid = 'cases'::regclass and attname in ('state', 'data') order by attname"
        )
    ).all()
    assert [tuple(m) for m in methods] == (
        [("data", "l"), ("state", "l")] if supported else [("data", ""), ("state", "")]
    )


def test_multi_step_data_survives_the_round_trip_through_the_database(session, deployed):
    # Each step restored from the stored text; a later script reads data entered two steps before.
    caseworker = deployed["caseworker"]
    case = cases.start_case(session, caseworker, "order_product", area_code=TOWNSHIP)
    answers = {
        "Activity_1uazifo": {"product_name": "product_c", "product_quantity": 3},
        "Activity_0263vxi": {"product_color": "black"},
        "Activity_0gg5h3v": {"shipping_method": "overnight"},
        "Activity_0h4nuly": {"shipping_address": "祥云镇"},
    }
    for _ in range(4):
        cases.forget_live_instances()
        task = session.scalar(
            select(HumanTask).where(HumanTask.case_id == case.id, HumanTask.status == TaskStatus.READY)
        )
        tasks.complete(session, caseworker, task.id, answers[task.task_spec])
    session.expire_all()
    data = cases.case_data(session.get(Case, case.id))
    assert data["product_quantity"] == 3 and data["product_color"] == "black"
    assert data["order_total"] == 3 * data["product_price"] + data["shipping_cost"]
    stored = session.execute(select(Case.state).where(Case.id == case.id)).scalar_one()
    restored = engine.Instance.restore(cases.runtime_of(session, session.get(Case, case.id)).spec, stored)
    assert restored.data["shipping_method"] == "overnight"
