"""`henpin feeds ...`: the feeds whose processing report did not account for their actions, and
a person's answer for them (the same `henpin.app.feeds` functions as the inbox's case page)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

ANSWERS = ("send-again", "done", "not-done")


def cmd_feeds_list(args: argparse.Namespace) -> int:
    from henpin.app.feeds import feeds_in_attention
    from henpin.cli import _migrate, _print_json, _settings

    settings = _settings(args)
    store_url = _migrate(settings)
    feeds = feeds_in_attention(store_url)
    if args.json:
        _print_json([f.model_dump(mode="json") for f in feeds])
    else:
        for f in feeds:
            cases = sorted({a["case_id"] for a in f.actions if a["case_id"] is not None})
            print(
                f"{f.id:>5}  {f.amazon_feed_id or '-':<14} {f.feed_type:<32} "
                f"{f.marketplace_id:<15} cases {', '.join(map(str, cases)) or '-'}"
            )
    return 0


def cmd_feeds_show(args: argparse.Namespace) -> int:
    from henpin.app.feeds import show_feed
    from henpin.cli import _migrate, _print_json, _settings

    settings = _settings(args)
    store_url = _migrate(settings)
    feed = show_feed(store_url, args.id)
    if feed is None:
        print(f"henpin: there is no feed {args.id}", file=sys.stderr)
        return 1
    if args.json:
        _print_json(feed.model_dump(mode="json"))
        return 0
    print(f"feed {feed.id} (Amazon {feed.amazon_feed_id or '-'}) {feed.feed_type} {feed.status}")
    for a in feed.actions:
        print(f"  message {a['message_id']}: {a['key']} (case {a['case_id']}) {a['status']}")
    print(feed.report or "(no report)")
    return 0


def cmd_feeds_settle(args: argparse.Namespace) -> int:
    from henpin.app.feeds import FeedSettleCode, settle_feed
    from henpin.cli import _migrate, _print_json, _settings

    settings = _settings(args)
    store_url = _migrate(settings)
    code = settle_feed(store_url, args.id, args.answer, operator=args.operator, where="cli")
    settled = code in (
        FeedSettleCode.SENT_AGAIN,
        FeedSettleCode.MARKED_DONE,
        FeedSettleCode.MARKED_NOT_DONE,
    )
    words = {
        FeedSettleCode.SENT_AGAIN: "its unresolved actions go out again in the next feed",
        FeedSettleCode.MARKED_DONE: "its unresolved actions are marked done",
        FeedSettleCode.MARKED_NOT_DONE: "its unresolved actions are marked not done (failed)",
        FeedSettleCode.NOT_IN_ATTENTION: "not waiting for an answer (answered already?)",
        FeedSettleCode.NO_FEED: "there is no such feed",
        FeedSettleCode.NOT_ALLOWED: f"{args.operator} is not an active operator or admin",
    }
    if args.json:
        result: dict[str, Any] = {
            "feed_id": args.id,
            "answer": args.answer,
            "settled": settled,
            "result": code.value,
        }
        _print_json(result)
    else:
        print(f"feed {args.id}: {words[code]}", file=sys.stdout if settled else sys.stderr)
    return 0 if settled else 1


def add_feeds_parser(sub: Any) -> None:
    """The `feeds` command and its subcommands."""
    feeds = sub.add_parser(
        "feeds", help="feeds whose Amazon report did not account for their actions"
    )
    fsub = feeds.add_subparsers(dest="feeds_command", required=True)
    fl = fsub.add_parser("list", help="feeds in attention: waiting for a person's answer")
    fl.add_argument("--json", action="store_true")
    fl.add_argument("--home", default=argparse.SUPPRESS)
    fl.set_defaults(func=cmd_feeds_list)
    fs = fsub.add_parser("show", help="a feed with Amazon's raw processing report")
    fs.add_argument("id", type=int, help="Henpin's feed id (feeds list)")
    fs.add_argument("--json", action="store_true")
    fs.add_argument("--home", default=argparse.SUPPRESS)
    fs.set_defaults(func=cmd_feeds_show)
    se = fsub.add_parser(
        "settle",
        help="answer for the actions of a feed in attention, after reading its report: "
        "send-again (back to the outbox), done (Amazon applied them), not-done (failed). "
        "The first answer wins.",
    )
    se.add_argument("id", type=int, help="Henpin's feed id (feeds list)")
    se.add_argument("--as", dest="answer", required=True, choices=ANSWERS)
    se.add_argument("--operator", required=True, help="an operator or admin of the inbox")
    se.add_argument("--json", action="store_true")
    se.add_argument("--home", default=argparse.SUPPRESS)
    se.set_defaults(func=cmd_feeds_settle)
