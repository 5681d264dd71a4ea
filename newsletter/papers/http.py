"""One polite HTTP client for every source: timeouts, retries with backoff, a pause between calls.

arXiv asks for at least 3 s between API calls and answers overload with 503; Hugging Face
and feeds occasionally time out. Retrying only timeouts, connection errors, 429 and 5xx
(never other 4xx, which are our mistake and would fail again) makes a transient fault
invisible while a source that stays down fails with one clear message.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import httpx
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from newsletter.settings import Settings

USER_AGENT = "newsletter-paper-digest/0.1 (+https://github.com/; polite bot)"


class SourceError(Exception):
    """A source could not be read (down after retries, or it answered with an error)."""


class _RetryableStatus(Exception):
    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, (_RetryableStatus, httpx.TimeoutException, httpx.TransportError))


class PoliteClient:
    """GET with retries and a minimum delay between consecutive calls (per client)."""

    def __init__(
        self,
        *,
        timeout: float,
        retries: int,
        delay_seconds: float = 0.0,
        backoff_seconds: float = 1.0,
    ) -> None:
        self._client = httpx.Client(
            timeout=timeout, follow_redirects=True, headers={"User-Agent": USER_AGENT}
        )
        self._retries = retries
        self._delay = delay_seconds
        self._backoff = backoff_seconds
        self._last_call: float | None = None

    @classmethod
    def from_settings(cls, settings: Settings, *, delay_seconds: float = 0.0) -> PoliteClient:
        return cls(
            timeout=settings.http_timeout,
            retries=settings.http_retries,
            delay_seconds=delay_seconds,
            backoff_seconds=settings.http_backoff_seconds,
        )

    def _wait_turn(self) -> None:
        if self._last_call is not None and self._delay > 0:
            remaining = self._delay - (time.monotonic() - self._last_call)
            if remaining > 0:
                time.sleep(remaining)
        self._last_call = time.monotonic()

    def _attempt(self, url: str, params: Mapping[str, str] | None) -> httpx.Response:
        self._wait_turn()
        response = self._client.get(url, params=params)
        if response.status_code == 429 or response.status_code >= 500:
            raise _RetryableStatus(response)
        return response

    def get(self, url: str, params: Mapping[str, str] | None = None) -> httpx.Response:
        """The response (any status below 500 but 429); SourceError once retries run out."""
        retrying = Retrying(
            retry=retry_if_exception(_is_transient),
            stop=stop_after_attempt(self._retries + 1),
            wait=wait_exponential(multiplier=self._backoff, max=60 * self._backoff),
            reraise=False,
        )
        try:
            return retrying(self._attempt, url, params)
        except RetryError as exc:
            cause = exc.last_attempt.exception()
            raise SourceError(
                f"{url} still failing after {self._retries + 1} attempts: {cause or 'no answer'}"
            ) from None

    def close(self) -> None:
        self._client.close()
