"""The status policy, row by row, as the pure function it is; and RetryPolicy's waits."""

from __future__ import annotations

import pytest

from otel_langsmith import RetryPolicy
from otel_langsmith._sender import Action, decide
from otel_langsmith._transport import Response

POLICY = RetryPolicy(initial_backoff=1.0, max_backoff=30.0, multiplier=2.0, jitter=0.0, max_retry_after=300.0)

# (answer, attempt, multipart endpoint, expected action, expected wait)
TABLE = [
    (Response(200), 0, True, Action.DELIVERED, 0.0),
    (Response(202), 3, True, Action.DELIVERED, 0.0),
    (Response(409, '{"detail": "already exists"}'), 0, True, Action.DELIVERED, 0.0),
    (Response(None, "connection refused"), 0, True, Action.RETRY, 1.0),
    (Response(None, "timed out"), 2, True, Action.RETRY, 4.0),
    (Response(408), 0, True, Action.RETRY, 1.0),
    (Response(425), 1, True, Action.RETRY, 2.0),
    (Response(429), 0, True, Action.RETRY, 1.0),
    (Response(500), 4, True, Action.RETRY, 16.0),
    (Response(502), 5, True, Action.RETRY, 30.0),
    (Response(503), 9, True, Action.RETRY, 30.0),
    (Response(504), 0, True, Action.RETRY, 1.0),
    # Retry-After is honoured when it asks for longer, never below the backoff, never beyond the cap.
    (Response(429, retry_after=12.0), 0, True, Action.RETRY, 12.0),
    (Response(503, retry_after=0.0), 3, True, Action.RETRY, 8.0),
    (Response(429, retry_after=86_400.0), 0, True, Action.RETRY, 300.0),
    # A proxy's error page during an outage is still an outage.
    (Response(503, "an HTML page", foreign=True), 0, True, Action.RETRY, 1.0),
    (Response(401), 0, True, Action.AUTH, 0.0),
    (Response(403, '{"error": "org_scoped_key_requires_workspace"}'), 0, True, Action.AUTH, 0.0),
    (Response(404, '{"detail": "Not Found"}'), 0, True, Action.FALLBACK, 0.0),
    (Response(404, '{"detail": "Not Found"}'), 0, False, Action.FOREIGN, 0.0),
    (Response(404, "an HTML page titled 'Not Found'", foreign=True), 0, True, Action.FOREIGN, 0.0),
    (Response(405), 0, True, Action.FOREIGN, 0.0),
    (Response(501), 0, True, Action.FOREIGN, 0.0),
    (Response(200, "an HTML page", foreign=True), 0, True, Action.FOREIGN, 0.0),
    (Response(307, "redirected to another host", foreign=True), 0, True, Action.FOREIGN, 0.0),
    (Response(302), 0, True, Action.FOREIGN, 0.0),
    (Response(413), 0, True, Action.SPLIT, 0.0),
    (Response(400, '{"error": "invalid dotted_order"}'), 0, True, Action.BISECT, 0.0),
    (Response(422), 0, True, Action.BISECT, 0.0),
    (Response(400, "an HTML page", foreign=True), 0, True, Action.FOREIGN, 0.0),
    (Response(418), 0, True, Action.REFUSE, 0.0),
    (Response(505), 0, True, Action.REFUSE, 0.0),
]


@pytest.mark.parametrize(("response", "attempt", "multipart", "action", "wait"), TABLE)
def test_the_status_table(response, attempt, multipart, action, wait):
    verdict = decide(response, attempt=attempt, policy=POLICY, multipart=multipart)
    assert verdict.action is action
    assert verdict.wait == pytest.approx(wait)


def test_the_retryable_statuses_are_the_policys():
    policy = RetryPolicy(jitter=0.0, retry_on=frozenset({503}))
    assert decide(Response(503), attempt=0, policy=policy).action is Action.RETRY
    assert decide(Response(429), attempt=0, policy=policy).action is Action.REFUSE
    assert decide(Response(None), attempt=0, policy=policy).action is Action.RETRY  # no answer at all


def test_jitter_stays_within_its_bounds():
    policy = RetryPolicy(initial_backoff=2.0, jitter=0.25)
    waits = [policy.delay(0) for _ in range(500)]
    assert 1.5 <= min(waits) < 1.7 and 2.3 < max(waits) <= 2.5


def test_a_huge_attempt_number_does_not_overflow():
    assert RetryPolicy(jitter=0.0).delay(10_000) == 30.0


@pytest.mark.parametrize(
    "options",
    [
        {"initial_backoff": 0},
        {"max_backoff": -1},
        {"multiplier": 0.5},
        {"jitter": 1.0},
        {"max_retry_after": float("inf")},
    ],
)
def test_a_policy_that_would_spin_or_never_retry_is_refused(options):
    with pytest.raises(ValueError, match="RetryPolicy"):
        RetryPolicy(**options)
