"""The durable outbox: every Amazon action is stored before it is sent, sent in batches, and
applied once: nothing lost, nothing done twice.

An action (cancel these items, refund this much) is stored under an idempotency key
(`enqueue`). The sender gathers the pending actions of one feed type and marketplace into ONE
feed of many messages (createFeed allows about one call per two minutes, so batching is the
design, not an optimisation), stores the feed and links its actions before calling Amazon
(`send_pending`), and the poller records each action's outcome from Amazon's processing report
(`poll_submitted`). Plain functions; the flows wrap them in Prefect tasks.

A feed's life (`FeedState`):

    preparing ──upload, then mark──▶ sending ──createFeed answered──▶ submitted ──▶ done
        ▲                               │                                 │        fatal
        └── Amazon refused (429/4xx) ───┘                                 │        cancelled
                                        │ crash / timeout / 5xx            └─▶ attention ──▶ settled
                                        ▼   (may or may not be at Amazon)  (report unreadable  (a person:
                                  reconcile: look at Amazon's side first    or not adding up)  settle_attention)

Why it is sound:
- `preparing` is committed before any HTTP call and becomes `sending` (committed) right before
  createFeed. So a `preparing` feed has certainly never been created at Amazon and may be sent
  directly; only a `sending` feed is uncertain.
- Only createFeed changes anything at Amazon, and the adapter never retries it blindly: a 429
  means "refused" (back to `preparing`); a timeout or 5xx means "maybe" (stays `sending`).
- `reconcile` resolves a `sending` feed only after `settle` (longer than any one createFeed
  attempt can take, so no attempt is still in flight) by listing Amazon's feeds of that type and
  marketplace created since the feed was stored. Every feed Henpin has an id for is recorded,
  and at most one feed per (feed type, marketplace) is ever unresolved (the sender starts no
  new one while one is `preparing` or `sending`), so a feed at Amazon that Henpin does not know
  is that one: adopt it if it is there, resend if not. This assumes Henpin is the only sender
  of these feed types for the seller; another tool's order acknowledgement or payment
  adjustment feed created in that window would be mistaken for ours.
- Claims are serialised per (feed type, marketplace): an advisory lock on PostgreSQL, SQLite's
  single write lock taken up front on SQLite. State changes are conditional (`WHERE status=…`),
  so two senders or pollers racing each other cannot both act.
- A message the processing report marks as not applied with a code Amazon documents as
  temporary (5002, "An internal error occurred. Please resubmit your data."; the table with its
  sources is henpin/amazon/result_codes.py), alone or as a FATAL feed's document error, goes back to
  `pending` and rides in the next feed, at most `MAX_SUBMISSIONS` times in all. Any other
  error, or a FATAL without that code, fails the action with Amazon's words, and its case is
  flagged "needs attention".
- A message counts as applied only when the report accounts for it: its own result, or a
  ProcessingSummary whose MessagesProcessed equals the messages sent and whose error and
  warning counts match the results listed (`report_gap`). Anything else (an under-count, no
  summary, a message left out) puts the feed in `attention`: messages with their own Error
  result fail as usual, no other action is marked done, and the feed's cases are flagged. A
  person reads the raw report and answers for the rest (`settle_attention`): send again, done,
  or not done; the first answer wins.

An action still `pending` when its case's flow run is cancelled in Prefect is withdrawn
(`withdraw_pending`): `failed` with the code `HENPIN_WITHDRAWN`, never sent.

Buyer messages (Messaging API) and e-mails (SMTP) are actions too (`ActionKind.SEND_MESSAGE`,
`SEND_EMAIL`), stored the same way, but sent one call each (`send_messages_and_emails`, called by
`send_pending`). Their life, in `Action.status` with the detail in `result_code`:

    pending ──claim (committed)──▶ submitted/SENDING ──accepted──▶ done
       ▲                              │        │ refused (not offered, 4xx/5xx answer) ▶ failed
       └─ certainly not sent ─────────┘        │ timeout / 5xx / line lost mid-send,
          (429, unreachable, login)            ▼ or left SENDING by a crash (reconcile)
                                        submitted/UNCERTAIN ──a person: settle_uncertain()──▶
                                                              done (was sent) | pending (was not)

Unlike a feed, a sent message cannot be looked up at Amazon (no API lists them) nor at the mail
server, so "maybe sent" is never resolved by resending: it waits for a person, exactly as a feed
whose report cannot be read waits in `attention` with its actions `submitted`. A buyer may miss
a message while it waits; a buyer never gets one twice.
"""

from __future__ import annotations

from henpin.outbox.enqueue import OutboxKeyConflict, enqueue
from henpin.outbox.feeds import (
    FATAL_CAUTION,
    FeedAnswer,
    poll_submitted,
    reconcile,
    report_gap,
    send_pending,
    settle_attention,
)
from henpin.outbox.one_by_one import (
    DEFAULT_ONE_BY_ONE,
    UNCERTAIN_EMAIL,
    UNCERTAIN_MESSAGE,
    send_messages_and_emails,
    settle_uncertain,
)
from henpin.outbox.states import (
    CLOCK_SKEW,
    DEFAULT_MAX_MESSAGES,
    KIND_FEED_TYPES,
    MAX_SUBMISSIONS,
    ONE_BY_ONE,
    RESUBMIT_CODES,
    RESUBMIT_PREFIX,
    SETTLE,
    FeedState,
    SendState,
)
from henpin.outbox.withdraw import WITHDRAWN, withdraw_pending

__all__ = [
    "CLOCK_SKEW",
    "DEFAULT_MAX_MESSAGES",
    "DEFAULT_ONE_BY_ONE",
    "FATAL_CAUTION",
    "KIND_FEED_TYPES",
    "MAX_SUBMISSIONS",
    "ONE_BY_ONE",
    "RESUBMIT_CODES",
    "RESUBMIT_PREFIX",
    "SETTLE",
    "UNCERTAIN_EMAIL",
    "UNCERTAIN_MESSAGE",
    "WITHDRAWN",
    "FeedAnswer",
    "FeedState",
    "OutboxKeyConflict",
    "SendState",
    "enqueue",
    "poll_submitted",
    "reconcile",
    "report_gap",
    "send_messages_and_emails",
    "send_pending",
    "settle_attention",
    "settle_uncertain",
    "withdraw_pending",
]
