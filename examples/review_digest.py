"""Pattern 4, review after the fact: low-risk actions run at once and are logged; a human reads
the daily digest, marks items ok or flagged.

    python examples/review_digest.py --store /tmp/hitl.db
    hitl --store /tmp/hitl.db digest --since 24h --format md
"""

from __future__ import annotations

import asyncio

from _support import backend, load_preset, options

from hitl_tui.models import ReviewMark, Verdict
from hitl_tui.sdk import Gate, render


async def main() -> None:
    opts = options(__doc__)
    await load_preset(opts.store)
    admin = backend(opts.store, "admin")
    cap = await admin.get_capability("read_logs")  # autonomous, and now reviewed afterwards
    await admin.put_capability(cap.model_copy(update={"review_after": True}), reason="audit log reads")
    gate = Gate(backend(opts.store, "support-bot"), "support-bot")

    for path in ("/var/log/app.log", "/var/log/auth.log", "/var/log/payments.log"):
        await gate.run(
            "read_logs", {"path": path, "api_token": "tok-123"}, lambda path, api_token: f"200 lines of {path}"
        )
    # Something that ran elsewhere can be logged directly, too:
    await gate.log_review("format_code", {"path": "src/"}, "reformatted 12 files")

    items = (await admin.list_reviews(reviewed=False)).items
    auth = next(i for i in items if i.args.get("path") == "/var/log/auth.log")
    await admin.mark_review(auth.id, ReviewMark(verdict=Verdict.flagged, note="why read auth logs?"), "dora")
    print(render(await gate.digest("24h"), "text"))  # secrets like api_token are redacted
    await admin.close()
    await gate.backend.close()


if __name__ == "__main__":
    asyncio.run(main())
