"""A tiny SMTP sink for the local stack: accepts mail and stores every delivery as an .eml file.

    python -m culture_stack.servers.smtp_sink --dir /var/lib/culture-platform/data/smtp [--port 12525]

Layout: `<dir>/<recipient>/<received-ns>-<uuid>.eml`, one file per accepted delivery and envelope
recipient, written atomically (temporary file + rename), so readers never see half a mail. Each
file starts with `X-Culture-Envelope-From`, `X-Culture-Envelope-To` and `X-Culture-Received-At`.

Test hooks, chosen by the recipient's local part so one test never disturbs another:
- `refuse...@`  -> RCPT is answered `550 5.1.1 mailbox unavailable (refused by the test sink)`;
- `slow<N>...@` -> the mail is stored at once but the final `250` is sent only after N seconds
  (default 5, at most 60): the window where the mail is delivered but the client has not yet heard
  so (what a client crash "after sending" looks like from the server).

No I/O in the naming helpers below, so they are unit-tested on their own.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import os
import re
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import aiosmtpd
from aiosmtpd.smtp import SMTP, Envelope, Session

from culture_stack import ports

log = logging.getLogger("culture_stack.smtp_sink")

#: what the sink calls itself in its greeting and EHLO reply
IDENT = f"culture-smtp-sink (aiosmtpd {aiosmtpd.__version__})"
REFUSE_PREFIX = "refuse"
SLOW = re.compile(r"^slow(\d{0,2})")
DEFAULT_SLOW_SECONDS = 5
_UNSAFE = re.compile(r"[^a-z0-9@._+=-]")


def mailbox_dir_name(address: str) -> str:
    """The directory name of a recipient: the lower-cased address with unusual characters as '_'."""
    name = _UNSAFE.sub("_", address.strip().strip("<>").lower())
    return name if name not in ("", ".", "..") else "_"


def local_part(address: str) -> str:
    """The part of an address before the last '@', lower-cased."""
    return address.strip().strip("<>").rpartition("@")[0].lower() or address.lower()


def refused(address: str) -> bool:
    """Whether the sink refuses this recipient (its local part starts with `refuse`)."""
    return local_part(address).startswith(REFUSE_PREFIX)


def slow_seconds(address: str) -> int:
    """How long to hold back the final reply for this recipient (0 for ordinary recipients)."""
    match = SLOW.match(local_part(address))
    if match is None:
        return 0
    return min(60, int(match.group(1)) if match.group(1) else DEFAULT_SLOW_SECONDS)


class SinkHandler:
    """aiosmtpd handler: refuse `refuse*` recipients, store everything else, delay `slow*` replies."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.stored = 0

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        if refused(address):
            log.info("refusing RCPT %s (test hook)", address)
            return "550 5.1.1 mailbox unavailable (refused by the test sink)"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content or b""
        if isinstance(content, str):
            content = content.encode()
        received = dt.datetime.now(dt.UTC).isoformat()
        for rcpt in envelope.rcpt_tos:
            header = (f"X-Culture-Envelope-From: {envelope.mail_from}\r\n"
                      f"X-Culture-Envelope-To: {rcpt}\r\n"
                      f"X-Culture-Received-At: {received}\r\n").encode()
            self._store(rcpt, header + content)
        delay = max((slow_seconds(r) for r in envelope.rcpt_tos), default=0)
        if delay:
            log.info("stored; holding the reply %ds for %s (test hook)", delay, envelope.rcpt_tos)
            await asyncio.sleep(delay)
        return "250 2.0.0 OK: stored"

    def _store(self, rcpt: str, data: bytes) -> None:
        box = self.root / mailbox_dir_name(rcpt)
        box.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns()}-{uuid.uuid4().hex[:8]}"
        tmp = box / f".{name}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, box / f"{name}.eml")  # atomic: readers see the whole mail or none
        self.stored += 1
        log.info("stored mail for %s (%d bytes)", rcpt, len(data))


async def serve(root: Path, host: str, port: int) -> None:
    """Run the sink until SIGTERM/SIGINT (`root` must exist)."""
    handler = SinkHandler(root)
    loop = asyncio.get_running_loop()

    def factory() -> Any:
        return SMTP(handler, hostname="culture-smtp-sink", ident=IDENT, data_size_limit=10 * 1024 * 1024)

    server = await loop.create_server(factory, host=host, port=port)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("%s listening on %s:%d, storing mail under %s", IDENT, host, port, root)
    await stop.wait()
    server.close()
    await server.wait_closed()
    log.info("stopped after storing %d mail(s)", handler.stored)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    host, port = ports.HOST, ports.SMTP
    parser = argparse.ArgumentParser(
        prog="python -m culture_stack.servers.smtp_sink",
        description="SMTP sink of the local stack: stores every received mail as <dir>/<rcpt>/*.eml; "
        "recipients 'refuse*@' get 550, 'slow<N>*@' get their 250 after N seconds.")
    parser.add_argument("--dir", required=True, type=Path, help="where to store the mails")
    parser.add_argument("--host", default=host, help=f"address to listen on (default {host})")
    parser.add_argument("--port", type=int, default=port, help=f"port (default {port})")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args.dir.mkdir(parents=True, exist_ok=True)
    asyncio.run(serve(args.dir, args.host, args.port))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
