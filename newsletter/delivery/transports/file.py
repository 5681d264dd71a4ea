"""The default transport: each message as an RFC 5322 `.eml` file under HOME/outbox/<date>/.

Works with no keys and no server, so a fresh checkout can run the whole pipeline; any mail
client opens the files. Each file is written to a temporary name and renamed, so a crash
never leaves half a message behind.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Sequence
from email.policy import SMTP

from newsletter.delivery.transports import Outgoing, SendResult, Transport, _always
from newsletter.settings import Settings


def _file_name(item: Outgoing) -> str:
    """Named after the Message-ID, so a resend of the same message replaces its file."""
    local = str(item.message["Message-ID"] or item.key).strip("<>").partition("@")[0]
    return re.sub(r"[^A-Za-z0-9._-]", "_", local) + ".eml"


class FileTransport(Transport):
    """Writes `HOME/outbox/<digest date>/<message id>.eml`."""

    name = "file"

    def __init__(self, settings: Settings) -> None:
        self.root = settings.home / "outbox"

    def send(
        self, batch: Sequence[Outgoing], claim: Callable[[Outgoing], bool] = _always
    ) -> Iterator[SendResult]:
        for item in batch:
            if not claim(item):
                continue
            folder = self.root / item.digest_date.isoformat()
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / _file_name(item)
            partial = path.with_suffix(".eml.partial")
            partial.write_bytes(item.message.as_bytes(policy=SMTP))
            os.replace(partial, path)
            yield SendResult(key=item.key, ok=True, provider_id=str(path))
