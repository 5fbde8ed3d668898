"""What a diagram's `issue_notice` message does: issue the numbered notice in the step's own transaction.

Payload: {"kind": "approval" | "refusal" | "admission_offer" | "public_list", "step": <the deciding step's id>,
...}; an admission offer also names its "offer_id".
"""

from .. import notices
from . import handles


@handles("issue_notice")
def issue_notice(session, case, payload, actor):
    payload = dict(payload or {})
    return notices.issue(
        session, case, payload.pop("kind"), step=payload.pop("step", None), actor=actor, payload=payload
    )
