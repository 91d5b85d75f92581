"""Steps 3 and 4 of the data path, one list read: every answer, in order, decoded once.

The one place a list is read: a stream's pass (list_pass.py), the organizations
listing (registry.py), ``--plan``'s first pages and ``--discover``'s sample all
read through a ListReader. For one organization's list it

* asks for each page with the stream's request hooks (``ListSource``: the URL,
  the parameters, the headers), sent with the organization's token, paced, retried
  and re-authenticated once (sending.py);
* judges each answer (verdict.py) and decodes it once (shapes.py), inside the
  retries, so that a body cut short is asked for again;
* asks again, smaller, for a page the server will not serve at the size asked
  (page_size.py);
* hands the list, on its first answer, to the paginator of the shape that answer
  speaks (paging.paginator_for).

It also asks for one record of the list by its id (``record``: Mokapen's show route,
``GET .../contacts/{id}``), through the same wrappers, for a pass that must know
whether a record it did not see is gone (list_pass.py).

The caller takes each answer's page, then advances the paginator it is handed:
until then, a failure leaves the list where the answer was asked.
"""

from __future__ import annotations

import dataclasses
import typing as t

import requests

from tap_mokapen import errors, paging, sending, verdict

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

    from tap_mokapen.auth import MokapenAuthenticator
    from tap_mokapen.page_size import PageSize
    from tap_mokapen.paging import Paginator, Params
    from tap_mokapen.shapes import Page
    from tap_mokapen.throttle import RequestPacer


class ListSource(t.Protocol):
    """What a list reader needs of its stream: the SDK's request hooks and counters."""

    @property
    def stats(self) -> t.Counter[str]:
        """The stream's counters: each request is counted there."""

    def prepare(self, context: Context | None, params: Params) -> requests.PreparedRequest:
        """The request for one page of the context's list (the URL, ``params``, headers)."""

    def prepare_record(self, context: Context | None, record_id: int) -> requests.PreparedRequest:
        """The request for one record of the context's list, by its id."""

    def send(
        self,
        request: requests.PreparedRequest,
        context: Context | None,
        authenticator: MokapenAuthenticator,
    ) -> requests.Response:
        """One request, sent with ``authenticator``'s token."""

    def judge(self, response: requests.Response, organization_id: int | str) -> None:
        """Raise what the answer means unless it is a page (verdict.py)."""

    def retrying(
        self, send: sending.Send[Sent], sizing: PageSize, organization_id: int | str
    ) -> sending.Send[Sent]:
        """``send`` with the stream's retries (sending.retried: its waits, log lines and
        counters)."""

    def listener(self) -> t.Any:
        """Who is told of the throttle's waits (progress.py)."""


Fetched = tuple[requests.Response, "Page"]
Sent = t.TypeVar("Sent")


@dataclasses.dataclass(frozen=True)
class RecordAnswer:
    """What the show route said of one id: the record, gone (404), or an answer that is
    not that record (the route is not what it should be)."""

    record: dict[str, t.Any] | None
    gone: bool = False

    @property
    def wrong(self) -> bool:
        return self.record is None and not self.gone


@dataclasses.dataclass(frozen=True)
class Answer:
    """One answer of a list: its page, decoded once, and where it was asked."""

    page: Page
    #: The request's path, for messages about the list.
    path: str
    #: The page as asked ("/api/v1/849/contacts page 3"), for messages about its records.
    where: str


class ListReader:
    """One organization's list, read for one purpose (a pass, a listing, a first page)."""

    def __init__(
        self,
        source: ListSource,
        *,
        context: Context | None,
        organization_id: int | str,
        authenticator: MokapenAuthenticator,
        pacer: RequestPacer,
        sizing: PageSize,
        decode: t.Callable[[requests.Response], Page],
    ) -> None:
        self.sizing = sizing
        self._source = source
        self._context = context

        def through(fetch: sending.Send[Sent]) -> sending.Send[Sent]:
            """``fetch`` paced, retried and re-authenticated once (sending.py)."""
            paced = sending.paced(
                fetch,
                authenticator=authenticator,
                pacer=pacer,
                listener=source.listener(),
                counts=source.stats,
            )
            return sending.reauthenticated_once(
                source.retrying(paced, sizing, organization_id),
                authenticator=authenticator,
                organization_id=organization_id,
            )

        def fetch(request: requests.PreparedRequest) -> Fetched:
            response = source.send(request, context, authenticator)
            source.judge(response, organization_id)
            # A body cut short raises TruncatedAnswer here: retried like any fault.
            return response, decode(response)

        def fetch_record(request: requests.PreparedRequest) -> RecordAnswer:
            response = source.send(request, context, authenticator)
            if response.status_code == 404:
                return RecordAnswer(None, gone=True)
            source.judge(response, organization_id)
            body = verdict.json_body(response)
            if body is None:
                msg = f"{errors.url_path(request.url)} answered with a body that is not JSON"
                raise errors.TruncatedAnswer(msg, response)
            # Laravel's JsonResource wraps the record in "data"; a model comes bare.
            if isinstance(body, dict) and isinstance(body.get("data"), dict):
                body = body["data"]
            return RecordAnswer(body if isinstance(body, dict) else None)

        self._send = through(fetch)
        self._send_record = through(fetch_record)

    def answers(self, paginator: Paginator) -> t.Iterator[tuple[Answer, Paginator]]:
        """Every answer of the list, with the paginator that reads on from it (the caller
        advances it once the page is taken)."""
        while not paginator.finished:
            request = self._source.prepare(self._context, paginator.current_value)
            try:
                _, page = self._send(request)
            except errors.PageSizeRefused as refusal:
                smaller = self.sizing.refused(refusal)
                if smaller is None:
                    path = errors.url_path(request.url)
                    msg = f"GET {path} was refused at every page size: {refusal.message}"
                    raise errors.APIError(msg) from None
                paginator.resize(smaller)
                continue
            path = errors.url_path(request.url)
            answer = Answer(page, path, f"{path} {paginator.describe_position()}")
            # The caller advances it: the loop goes on with what it advanced.
            paginator = paging.paginator_for(page, paginator, path)
            yield answer, paginator

    def record(self, record_id: int) -> RecordAnswer:
        """One record by its id (the show route): the record, gone, or a wrong answer
        (anything but that record, which says the route is not what it should be)."""
        answer = self._send_record(self._source.prepare_record(self._context, record_id))
        if answer.record is not None and answer.record.get("id") != record_id:
            return RecordAnswer(None)
        return answer

    def first_page(self, paginator: Paginator) -> Page:
        """The list's first answer only (``--plan``, ``--discover``'s sample)."""
        for answer, _ in self.answers(paginator):
            return answer.page
        msg = "the list answered no first page"
        raise errors.APIError(msg)

    def records(self, paginator: Paginator) -> t.Iterator[t.Any]:
        """Every record of the list as plain JSON, to its end; an error if its answers
        contradicted each other (a listing that contradicts itself may lack a record)."""
        for answer, reading in self.answers(paginator):
            yield from answer.page.records
            reading.advance(answer.page, answer.path)
            paginator = reading
        doubt = paginator.verdict()
        if doubt:
            msg = f"the list's answers contradict each other ({doubt})"
            raise errors.APIError(msg)
