"""The default transport: each message as an RFC 5322 `.eml` file under HOME/outbox/<date>/.

Works with no keys and no server, so a fresh checkout can run the whole pipeline; any mail
client opens the files. Each file is written to a temporary name and renamed, so a crash
never leaves half a message behind (and a failed write is a plain failure: nothing was sent).
"""

from __future__ import annotations

import os
import re
from email.policy import SMTP

from newsletter.delivery.transports import Outcome, Outgoing, SendResult, Transport
from newsletter.settings import Settings


def _file_name(item: Outgoing) -> str:
    """Named after the Message-ID, so a resend of the same message replaces its file."""
    local = item.mail.message_id.strip("<>").partition("@")[0] or str(item.key)
    return re.sub(r"[^A-Za-z0-9._-]", "_", local) + ".eml"


class FileTransport(Transport):
    """Writes `HOME/outbox/<digest date>/<message id>.eml`."""

    name = "file"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.root = settings.home / "outbox"

    def deliver(self, item: Outgoing) -> SendResult:
        folder = self.root / item.digest_date.isoformat()
        path = folder / _file_name(item)
        partial = path.with_suffix(".eml.partial")
        try:
            folder.mkdir(parents=True, exist_ok=True)
            partial.write_bytes(item.message.as_bytes(policy=SMTP))
            os.replace(partial, path)
        except OSError as exc:
            return SendResult(item.key, Outcome.FAILED, error=f"cannot write {path}: {exc.strerror or exc}")
        return SendResult(item.key, Outcome.SENT, provider_id=str(path))
