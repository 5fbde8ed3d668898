"""Office users for locust (`bench scaleout` runs it): village assistants registering elders and starting
cases, caseworkers, assessors and approvers working their inboxes: reading the inbox, opening a task's
form, completing it, reading a case, searching the register.

Configured by the environment: ELDERCARE_HOSTS (space-separated base URLs; each simulated user works
against one of them, as people of one office use their own server), ELDERCARE_PASSWORD, and
ELDERCARE_THINK ("min,max" seconds between a user's actions).

A 409 (someone else did it first) is a normal answer in an office where colleagues share a queue: it is
counted as an answer (and reported apart), not as a failure. A failure is a 5xx, no answer, or any other
unexpected answer.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import urllib.request
from datetime import date, timedelta
from pathlib import Path

from locust import FastHttpUser, between, events, task

from bench.real_steps import answers
from workflows.clock import LOCAL, ShiftedClock
from workflows.rules.idnumber import compute_check_char

HOSTS = os.environ.get("ELDERCARE_HOSTS", "http://127.0.0.1:5000").split()
PASSWORD = os.environ.get("ELDERCARE_PASSWORD", "eldercare2026")
THINK = [float(x) for x in os.environ.get("ELDERCARE_THINK", "2,6").split(",")]
# The instances' clock (moved during a run): people write the day it is for the server.
CLOCK = (
    ShiftedClock(Path(os.environ["ELDERCARE_CLOCK_FILE"])) if os.environ.get("ELDERCARE_CLOCK_FILE") else None
)
# The steps people complete here, by process (a step id can mean another form in another process); steps
# that name a person or an amount from the case (dispatching, settling) are left to the office's pages.
WORKED = {
    "assessment": ("conduct_assessment", "notify_result"),
    "home_care": (
        "conduct_assessment",
        "notify_result",
        "township_review",
        "county_approval",
        "provider_accept",
    ),
    "visiting_care": ("confirm_enrolment",),
    "visiting_care_visit": ("record_visit",),
    "home_care_month": ("record_services", "callback_check"),
}
VILLAGE = "410825100201"


# 409s per request name, written where ELDERCARE_CONFLICTS_FILE says when the run ends.
CONFLICTS: dict[str, int] = {}


@events.test_stop.add_listener
def _write_conflicts(environment, **_):
    if os.environ.get("ELDERCARE_CONFLICTS_FILE"):
        Path(os.environ["ELDERCARE_CONFLICTS_FILE"]).write_text(json.dumps(CONFLICTS))


# Signed in once per account before the users start (people sign in once a day, not all in one second:
# 200 password checks at once would measure the password hash, not the office's work).
TOKENS: dict[str, str] = {}


@events.test_start.add_listener
def _sign_in(environment, **_):
    for account in ("caseworker", "assessor", "approver", "village_assistant"):
        body = json.dumps({"username": account, "password": PASSWORD}).encode()
        request = urllib.request.Request(
            HOSTS[0] + "/api/login", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            TOKENS[account] = json.loads(response.read())["token"]


def today() -> date:
    return CLOCK().astimezone(LOCAL).date() if CLOCK else date.today()


def answer_for(item: dict) -> dict | None:
    if item["step"] not in WORKED.get(item["process"], ()):
        return None
    return answers(today(), provider_id=0)[item["step"]]


_serial = itertools.count(random.Random().randint(1, 10**6) * 1000)


class Office(FastHttpUser):  # the lighter client: the load generator shares the machine's two cores
    abstract = True
    wait_time = between(*THINK)
    account = "caseworker"

    def on_start(self):
        self.client.base_url = random.choice(HOSTS)
        self.inbox: list[dict] = []
        self.headers = {"Authorization": f"Bearer {TOKENS[self.account]}"}

    def sign_in(self):
        response = self.client.post(
            "/api/login", json={"username": self.account, "password": PASSWORD}, name="sign in"
        )
        self.headers = {"Authorization": f"Bearer {response.json()['token']}"}

    def call(self, method: str, path: str, name: str, body=None):
        with self.client.request(
            method, path, json=body, headers=self.headers, name=name, catch_response=True
        ) as response:
            if response.status_code == 401:  # the token ran out (the clock jumped): sign in again
                response.success()
                self.sign_in()
            elif response.status_code == 409:
                response.success()
                CONFLICTS[name] = CONFLICTS.get(name, 0) + 1
            elif response.status_code >= 400 and response.status_code != 404:
                response.failure(f"{response.status_code}: {response.text[:200]}")
            return response

    @task(4)
    def read_inbox(self):
        scope = random.choice(("group", "mine", "all"))
        response = self.call("GET", f"/api/tasks?scope={scope}&per_page=50", "inbox")
        if response.status_code == 200:
            # "All" shows the township's other steps too: a person works those of their own role.
            self.inbox = [
                t for t in response.json()["items"] if t["role"] == self.account and answer_for(t) is not None
            ]

    @task(2)
    def open_and_complete(self):
        if not self.inbox:
            return
        item = self.inbox.pop(random.randrange(len(self.inbox)))
        form = self.call("GET", f"/api/tasks/{item['id']}", "task form")
        if form.status_code != 200:
            return
        self.call("POST", f"/api/tasks/{item['id']}/complete", "complete", {"data": answer_for(item)})

    @task(1)
    def read_case(self):
        if self.inbox:
            self.call("GET", f"/api/cases/{random.choice(self.inbox)['case_id']}", "case page")

    @task(1)
    def search_elders(self):
        self.call("GET", f"/api/elders?q={random.choice('王李张刘陈杨赵黄周吴混沌基准')}", "elder search")


class Caseworker(Office):
    weight = 8
    account = "caseworker"


class Assessor(Office):
    weight = 3
    account = "assessor"


class Approver(Office):
    weight = 1
    account = "approver"


class VillageAssistant(Office):
    weight = 8
    account = "village_assistant"

    @task(2)
    def register_and_start(self):
        n = next(_serial)
        first17 = f"410825{(date(1930, 1, 1) + timedelta(days=n % 9000)):%Y%m%d}{n % 1000:03d}"
        elder = self.call(
            "POST",
            "/api/elders",
            "register elder",
            {
                "name": "压测" + "甲乙丙丁戊己庚辛壬癸"[n % 10] + "老人",
                "id_number": first17 + compute_check_char(first17),
                "hukou_type": "rural",
                "residence_area_code": VILLAGE,
                "living_arrangement": "living_alone",
                "dibao": True,
            },
        )
        if elder.status_code != 201:
            return
        process = random.choice(("assessment", "visiting_care"))
        data = {"reason": "initial"} if process == "assessment" else {"note": "独居"}
        self.call(
            "POST",
            "/api/cases",
            "start case",
            {"process": process, "elder_id": elder.json()["id"], "data": data},
        )
