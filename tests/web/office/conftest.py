"""The office's pages on a real app, once on SQLite and once on PostgreSQL: the demo county's registry (one
person per role, the demo provider and nursing home with their staff), the shipped processes, and besides
them a township's administrator, a second provider and a second home with a staff account each."""

from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy import select, text

from tests.web.conftest import PASSWORD, Browser, api_token, web_app
from workflows import calendars, demo, organisations, versions
from workflows.config import bpmn_dir
from workflows.db import make_engine, session_factory
from workflows.models import Base, Role, User
from workflows.rules import workdays
from workflows.users import create_user

TOWNSHIP = "410825100"  # 祥云镇
OTHER_TOWNSHIP = "410825101"  # 番田镇
PEOPLE = (
    "admin",
    "town_admin",
    "caseworker",
    "caseworker2",
    "village_assistant",
    "approver",
    "assessor",
    "auditor",
    "process_owner",
    "provider",
    "xiyang",
    "facility_admin",
    "home2",
)


def backends():
    return ["sqlite", "postgresql"] if os.environ.get("ELDERCARE_TEST_PG_URL") else ["sqlite"]


def database(kind: str, folder):
    if kind == "sqlite":
        return f"sqlite:///{folder / 'office.sqlite'}", None
    server = os.environ["ELDERCARE_TEST_PG_URL"].replace("postgresql://", "postgresql+psycopg://", 1)
    name = f"eldercare_office_{uuid.uuid4().hex[:12]}"
    admin = make_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    return server.rsplit("/", 1)[0] + "/" + name, (admin, name)


def populate(session, password: str = PASSWORD) -> dict:
    """The demo registry and processes, and the office's extra people and organisations."""
    demo.load_demo_registry(session, password)
    versions.deploy(session, None, versions.read_bundle(bpmn_dir()))
    admin = session.scalar(select(User).where(User.username == "admin"))
    xiyang = organisations.create_organisation(
        session,
        admin,
        {
            "kind": "provider",
            "name": "温县夕阳红家政服务有限公司",
            "area_code": "410825",
            "contract_start": "2024-01-01",
            "contract_end": "2030-12-31",
            "services": ["meal", "cleaning"],
            "service_areas": [OTHER_TOWNSHIP],
        },
    )
    home2 = organisations.create_organisation(
        session,
        admin,
        {"kind": "facility", "name": "温县第二社会福利院", "area_code": "410825", "beds": {"nursing": 30}},
    )
    for username, name, role, area, organisation in (
        ("town_admin", "祥云镇系统管理员", Role.ADMIN, TOWNSHIP, None),
        ("xiyang", "夕阳红接单员", Role.PROVIDER, "410825", xiyang.id),
        ("home2", "二院管理员", Role.FACILITY_ADMIN, "410825", home2.id),
    ):
        create_user(
            session,
            username=username,
            display_name=name,
            role=role,
            area_code=area,
            password=password,
            organisation_id=organisation,
        )
    return {"xiyang": xiyang.id, "home2": home2.id}


@pytest.fixture(scope="session", params=backends())
def office(request, tmp_path_factory):
    """{"app", "engine", "sessions", "browsers", "api", "kind", "ids"}: one office per database."""
    folder = tmp_path_factory.mktemp(f"office_{request.param}")
    url, drop = database(request.param, folder)
    engine = make_engine(url)
    Base.metadata.create_all(engine)
    with session_factory(engine).begin() as session:
        ids = populate(session)
    app = web_app(url, folder, secret=f"office-{request.param}")
    browsers = {name: Browser(app, name) for name in PEOPLE}

    class Caller:
        def __init__(self, username):
            self.client = app.test_client()
            self.headers = {"Authorization": f"Bearer {api_token(self.client, username)}"}

        def get(self, url, **kw):
            return self.client.get(url, headers=self.headers, **kw)

        def post(self, url, json=None, **kw):
            return self.client.post(url, headers=self.headers, json=json if json is not None else {}, **kw)

        def patch(self, url, json=None, **kw):
            return self.client.patch(url, headers=self.headers, json=json if json is not None else {}, **kw)

    callers = {name: Caller(name) for name in ("admin", "town_admin", "caseworker", "approver", "provider")}
    yield {
        "app": app,
        "engine": engine,
        "sessions": session_factory(engine),
        "browsers": browsers,
        "api": callers,
        "kind": request.param,
        "ids": ids,
    }
    app.extensions["db_engine"].dispose()
    engine.dispose()
    if drop is not None:
        admin, name = drop
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(autouse=True)
def library_calendar():
    """The calendar is the process's: what a test enters is gone for the next."""
    yield
    workdays.use_entered_years({})
    calendars._seen_revisions = None
