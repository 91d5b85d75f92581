"""The three wrappers one request is sent through (sending.py), each alone: no HTTP."""

from __future__ import annotations

import collections
import typing as t

import pytest
import requests
from singer_sdk.exceptions import RetriableAPIError

from tap_mokapen import errors, retries, sending
from tap_mokapen.page_size import PageSize
from tap_mokapen.throttle import RequestPacer


class FakeToken:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def ensure_token(self) -> None:
        self.calls.append("ensure_token")

    def invalidate(self) -> None:
        self.calls.append("invalidate")


def request(path: str = "/api/v1/849/contacts") -> requests.PreparedRequest:
    return requests.Request("GET", f"http://127.0.0.1{path}").prepare()


def answering(*outcomes: t.Any) -> t.Callable[[requests.PreparedRequest], t.Any]:
    """A send that raises or returns each outcome in turn."""
    pending = list(outcomes)

    def send(_: requests.PreparedRequest) -> t.Any:
        outcome = pending.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    return send


def test_paced_takes_the_token_before_its_slot_and_counts_each_attempt():
    token, pacer, counts = FakeToken(), RequestPacer(None), collections.Counter()
    order: list[str] = []

    def send(_: requests.PreparedRequest) -> str:
        order.append(f"send with {pacer.requests} slot(s) taken")
        return "answer"

    paced = sending.paced(send, authenticator=token, pacer=pacer, counts=counts)  # type: ignore[arg-type]
    assert paced(request()) == "answer"
    assert token.calls == ["ensure_token"] and order == ["send with 1 slot(s) taken"]
    assert counts["requests"] == 1 and pacer.requests == 1


def test_paced_refuses_a_request_past_the_runs_budget():
    pacer = RequestPacer(None, max_requests=1)
    paced = sending.paced(answering("one", "two"), authenticator=FakeToken(), pacer=pacer)  # type: ignore[arg-type]
    assert paced(request()) == "one"
    with pytest.raises(errors.RequestBudgetSpent):
        paced(request())


def retried(send: t.Callable, sizing: PageSize | None = None, max_wait: float = 60.0) -> t.Callable:
    return sending.retried(
        send,
        sizing=sizing or PageSize.for_endpoint(100, None),
        max_wait_seconds=max_wait,
        wait_gen=lambda: retries.wait_generator(max_wait),
        on_retry=lambda details: None,
    )


def test_retried_waits_out_a_fault_and_returns_the_answer():
    fault = RetriableAPIError("503 Service Unavailable")
    assert retried(answering(fault, fault, "answer"))(request()) == "answer"


def test_retried_names_the_request_when_a_network_fault_outlasts_max_wait():
    refused = requests.exceptions.ConnectionError("Connection refused")
    send = retried(answering(*[refused] * 1000), max_wait=30)
    with pytest.raises(errors.APIError, match=r"GET /api/v1/849/contacts failed: .*30"):
        send(request())


def test_retried_turns_faults_at_a_large_page_into_a_refusal_of_its_size():
    sizing = PageSize.for_endpoint(None, None)  # the default size, lowered on faults
    timeout = requests.Response()
    timeout.status_code, timeout._content = 504, b"{}"
    fault = RetriableAPIError("504 Gateway Timeout", timeout)
    with pytest.raises(errors.PageSizeRefused) as refused:
        retried(answering(*[fault] * 1000), sizing=sizing)(request())
    assert refused.value.fault


def test_reauthenticated_once_sends_again_with_a_fresh_token():
    token = FakeToken()
    send = sending.reauthenticated_once(
        answering(errors.ReauthenticationNeeded("401"), "answer"),
        authenticator=token,  # type: ignore[arg-type]
        organization_id=849,
    )
    assert send(request()) == "answer"
    assert token.calls == ["invalidate"]


def test_reauthenticated_once_gives_up_on_a_second_401_naming_the_organization():
    token = FakeToken()
    again = errors.ReauthenticationNeeded("401 Invalid Token")
    send = sending.reauthenticated_once(
        answering(again, again, "never"),
        authenticator=token,  # type: ignore[arg-type]
        organization_id=849,
    )
    with pytest.raises(errors.AuthenticationError, match="organization 849 was revoked"):
        send(request())
    assert token.calls == ["invalidate"]
