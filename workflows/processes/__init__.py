"""The processes this system runs, listed explicitly; each package declares what it plugs into.

Adding a process: a folder under bpmn/ (diagram, DMN tables, forms), a package here whose `PROCESSES`
declares it (`workflows.registry.Process`), and one line below. A process that needs nothing beyond its
diagram needs no package at all: it is deployed and runs with the generic behaviour.
"""

from .. import notices, outbox, registry
from . import admission, assessment, home_adaptation, home_care, visiting_care

# The order matters where processes share something: demo cases are made in it, and an elder leaving the
# register reaches the processes' cases in it.
ALL = (
    *assessment.PROCESSES,
    *home_care.PROCESSES,
    *visiting_care.PROCESSES,
    *home_adaptation.PROCESSES,
    *admission.PROCESSES,
)


def build() -> registry.Registry:
    # Service tasks may call these operations of the system's own, besides what the processes declare.
    return registry.Registry(
        ALL,
        connectors={"send_sms": outbox.send_for_diagram},
        messages={"issue_notice": notices.issue_from_diagram},  # numbered notices, from any decision step
    )


def install() -> registry.Registry:
    """Install the registry of these processes (the app, the command line and the tests call this once)."""
    return registry.install(build())
