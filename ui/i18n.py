"""Every word the inbox shows, per language, so a new language is one more table, not a page edit.

Pages call `t("key", name=value)`; the language is the browser session's (`lang` in session
state, set from the operator's profile at sign-in and switchable in the sidebar). A key missing
in a language falls back to English; a key missing everywhere shows the key itself, so a typo is
visible instead of blank. Names that come from data (choices, case types, outcomes) go through
`label()`, which shows unknown names as they are.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

DEFAULT_LANGUAGE = "en"
LANGUAGES: dict[str, str] = {"en": "English", "ja": "日本語"}

TEXT: dict[str, dict[str, str]] = {
    "en": {
        "app.title": "Henpin inbox",
        "app.language": "Language",
        "store.unreachable": "The case store cannot be reached ({error}). Check that Henpin "
        "is running (`henpin up`) and reload this page.",
        # sign-in
        "login.title": "Sign in",
        "login.intro": "Sign in to see and decide the cases waiting for an operator.",
        "login.name": "Name",
        "login.password": "Password",
        "login.submit": "Sign in",
        "login.failed": "Sign-in failed: that name and password do not match an operator. "
        "Try again, or ask an admin to reset your password.",
        "session.signed_in_as": "Signed in as **{name}** ({role})",
        "session.sign_out": "Sign out",
        # inbox
        "nav.inbox": "Inbox",
        "nav.case": "Case",
        "inbox.title": "Inbox",
        "inbox.refresh": "Refresh",
        "inbox.waiting": "Waiting for a decision ({count})",
        "inbox.waiting_none": "No case is waiting for a decision. New cases appear here "
        "within a few minutes of the buyer's request.",
        "inbox.in_progress": "In progress ({count})",
        "inbox.show_closed": "Show recently closed cases",
        "inbox.closed": "Recently closed",
        "inbox.closed_none": "No closed cases yet.",
        "inbox.open": "Open",
        "inbox.recommends": "Policy recommends: **{action}**",
        "inbox.rule": "rule `{rule}`",
        "inbox.no_recommendation": "No recommendation",
        "inbox.outcome": "Outcome: **{outcome}**",
        "inbox.needs_attention": "Needs attention",
        # time
        "time.left": "{span} left",
        "time.overdue": "overdue by {span}",
        "time.days": "{n} d",
        "time.hours": "{n} h",
        "time.minutes": "{n} min",
        "time.less_than_minute": "less than a minute",
        "time.utc": "{at} UTC",
        # case page
        "case.back": "← Back to the inbox",
        "case.none_selected": "Choose a case in the inbox to open it here.",
        "case.not_found": "There is no case {case_id}. It may have been removed; go back to the "
        "inbox and reload it.",
        "case.title": "{type} · {order_id}",
        "case.subtitle": "Case {case_id} · {marketplace} · {state}",
        "case.needs_attention": "Needs attention: {reason}",
        "case.deadline": "Deadline: **{at}** ({left})",
        "case.deadline_passes": "If nobody decides by then, the case takes the path **{choice}**.",
        "case.outcome": "Outcome: **{outcome}**",
        "case.order": "Order",
        "case.order_status": "Fulfillment status",
        "case.order_created": "Ordered",
        "case.order_value": "Order value",
        "case.buyer_reason": "Buyer's reason",
        "case.buyer_reason_none": "The buyer gave no reason.",
        "case.items": "Items",
        "case.item.sku": "SKU",
        "case.item.title": "Title",
        "case.item.quantity": "Quantity",
        "case.item.unit_price": "Unit price",
        "case.item.reason": "Buyer's reason",
        "case.recommendation": "What policy recommends",
        "case.recommendation_action": "**{action}**",
        "case.recommendation_rule": "Rule: `{rule}`",
        "case.recommendation_reason": "Why: {reason}",
        "case.recommendation_none": "Policy made no recommendation for this case.",
        "case.links": "Links",
        "case.link_seller_central": "Order in Seller Central",
        "case.link_flow_run": "Flow run in Prefect",
        "case.decide": "Your decision",
        "case.decide_choice": "What should happen?",
        "case.decide_recommended": "{label} (recommended)",
        "case.decide_note": "Note (optional, kept with the decision)",
        "case.decide_submit": "Submit decision",
        "case.decide_pick_one": "Choose what should happen, then submit again.",
        "case.decide_viewer": "Your role ({role}) can read cases but not decide them.",
        "case.already_decided": "Already decided by {who} (**{choice}**) at {at}; the case "
        "continues within a minute.",
        "case.decided_by_deadline": "the deadline",
        "case.timeline": "Timeline",
        "case.timeline_none": "Nothing recorded yet.",
        "case.decisions": "Decisions",
        "case.decisions_none": "No decisions yet.",
        "case.actions": "Amazon actions",
        "case.actions_none": "No action sent to Amazon for this case.",
        "col.at": "When",
        "col.event": "What happened",
        "col.operator": "Who",
        "col.choice": "Choice",
        "col.note": "Note",
        "col.source": "From",
        "col.status": "Status",
        "col.feed_id": "Amazon feed id",
        "col.result": "Amazon's result",
        "col.kind": "Action",
        # names from data
        "case_type.cancel-request": "Cancel request",
        "case_type.return-request": "Return request",
        "case_type.cancel-by-message": "Cancel by message",
        "case_type.refused-delivery": "Refused delivery",
        "case_type.address-error": "Address error",
        "state.open": "open",
        "state.waiting": "waiting for a decision",
        "state.acting": "acting on Amazon",
        "state.closed": "closed",
        "choice.cancel": "Cancel the order (reason: BuyerCanceled)",
        "choice.keep_order": "Keep the order and ship it",
        "choice.escalate": "Escalate to the owner",
        "outcome.nothing-to-do-pending": "Nothing to do (order still pending)",
        "outcome.cancelled-buyer-canceled": "Cancelled (buyer canceled)",
        "outcome.kept-order": "Kept the order",
        "outcome.already-cancelled": "Already cancelled",
        "outcome.order-changed": "Order changed before Henpin acted",
        "outcome.amazon-rejected": "Amazon rejected the action",
        "outcome.escalated": "Escalated to the owner",
        "source.inbox": "inbox",
        "source.cli": "command line",
        "source.prefect-ui": "Prefect UI",
        "source.deadline": "deadline",
        "role.viewer": "viewer",
        "role.operator": "operator",
        "role.admin": "admin",
    },
    "ja": {
        "app.title": "Henpin 受信箱",
        "app.language": "言語",
        "store.unreachable": "ケースストアに接続できません（{error}）。Henpin が起動しているか"
        "（`henpin up`）確認して、このページを再読み込みしてください。",
        "login.title": "サインイン",
        "login.intro": "サインインすると、オペレーターの判断を待っているケースを確認・決定できます。",
        "login.name": "名前",
        "login.password": "パスワード",
        "login.submit": "サインイン",
        "login.failed": "サインインできませんでした。名前とパスワードが一致するオペレーターが"
        "いません。もう一度入力するか、管理者にパスワードの再設定を依頼してください。",
        "session.signed_in_as": "**{name}**（{role}）でサインイン中",
        "session.sign_out": "サインアウト",
        "nav.inbox": "受信箱",
        "nav.case": "ケース",
        "inbox.title": "受信箱",
        "inbox.refresh": "更新",
        "inbox.waiting": "判断待ち（{count} 件）",
        "inbox.waiting_none": "判断待ちのケースはありません。購入者のリクエストから数分以内に"
        "新しいケースがここに表示されます。",
        "inbox.in_progress": "処理中（{count} 件）",
        "inbox.show_closed": "最近完了したケースを表示",
        "inbox.closed": "最近完了したケース",
        "inbox.closed_none": "完了したケースはまだありません。",
        "inbox.open": "開く",
        "inbox.recommends": "ポリシーの推奨: **{action}**",
        "inbox.rule": "ルール `{rule}`",
        "inbox.no_recommendation": "推奨なし",
        "inbox.outcome": "結果: **{outcome}**",
        "inbox.needs_attention": "要確認",
        "time.left": "残り {span}",
        "time.overdue": "{span} 超過",
        "time.days": "{n} 日",
        "time.hours": "{n} 時間",
        "time.minutes": "{n} 分",
        "time.less_than_minute": "1 分未満",
        "time.utc": "{at} UTC",
        "case.back": "← 受信箱に戻る",
        "case.none_selected": "受信箱でケースを選ぶと、ここに表示されます。",
        "case.not_found": "ケース {case_id} は存在しません。削除された可能性があります。"
        "受信箱に戻って再読み込みしてください。",
        "case.title": "{type} · {order_id}",
        "case.subtitle": "ケース {case_id} · {marketplace} · {state}",
        "case.needs_attention": "要確認: {reason}",
        "case.deadline": "期限: **{at}**（{left}）",
        "case.deadline_passes": "期限までに誰も判断しない場合、ケースは **{choice}** に進みます。",
        "case.outcome": "結果: **{outcome}**",
        "case.order": "注文",
        "case.order_status": "出荷ステータス",
        "case.order_created": "注文日時",
        "case.order_value": "注文金額",
        "case.buyer_reason": "購入者の理由",
        "case.buyer_reason_none": "購入者は理由を示していません。",
        "case.items": "商品",
        "case.item.sku": "SKU",
        "case.item.title": "商品名",
        "case.item.quantity": "数量",
        "case.item.unit_price": "単価",
        "case.item.reason": "購入者の理由",
        "case.recommendation": "ポリシーの推奨",
        "case.recommendation_action": "**{action}**",
        "case.recommendation_rule": "ルール: `{rule}`",
        "case.recommendation_reason": "理由: {reason}",
        "case.recommendation_none": "このケースにポリシーの推奨はありません。",
        "case.links": "リンク",
        "case.link_seller_central": "セラーセントラルの注文",
        "case.link_flow_run": "Prefect のフロー実行",
        "case.decide": "判断",
        "case.decide_choice": "どうしますか？",
        "case.decide_recommended": "{label}（推奨）",
        "case.decide_note": "メモ（任意、判断と一緒に保存されます）",
        "case.decide_submit": "判断を送信",
        "case.decide_pick_one": "どうするかを選んでから、もう一度送信してください。",
        "case.decide_viewer": "あなたのロール（{role}）はケースの閲覧のみで、判断はできません。",
        "case.already_decided": "{who} が {at} に判断済みです（**{choice}**）。ケースは 1 分以内に"
        "続行します。",
        "case.decided_by_deadline": "期限",
        "case.timeline": "経過",
        "case.timeline_none": "まだ記録はありません。",
        "case.decisions": "判断",
        "case.decisions_none": "まだ判断はありません。",
        "case.actions": "Amazon への操作",
        "case.actions_none": "このケースで Amazon に送った操作はありません。",
        "col.at": "日時",
        "col.event": "出来事",
        "col.operator": "担当者",
        "col.choice": "選択",
        "col.note": "メモ",
        "col.source": "経路",
        "col.status": "状態",
        "col.feed_id": "Amazon フィード ID",
        "col.result": "Amazon の処理結果",
        "col.kind": "操作",
        "case_type.cancel-request": "キャンセルリクエスト",
        "case_type.return-request": "返品リクエスト",
        "case_type.cancel-by-message": "メッセージでのキャンセル依頼",
        "case_type.refused-delivery": "受取拒否",
        "case_type.address-error": "住所不備",
        "state.open": "受付",
        "state.waiting": "判断待ち",
        "state.acting": "Amazon で処理中",
        "state.closed": "完了",
        "choice.cancel": "注文をキャンセルする（理由: BuyerCanceled）",
        "choice.keep_order": "注文を維持して出荷する",
        "choice.escalate": "オーナーにエスカレーションする",
        "outcome.nothing-to-do-pending": "対応不要（注文は保留中）",
        "outcome.cancelled-buyer-canceled": "キャンセル済み（購入者都合）",
        "outcome.kept-order": "注文を維持",
        "outcome.already-cancelled": "既にキャンセル済み",
        "outcome.order-changed": "Henpin の処理前に注文が変わりました",
        "outcome.amazon-rejected": "Amazon が操作を拒否しました",
        "outcome.escalated": "オーナーにエスカレーション済み",
        "source.inbox": "受信箱",
        "source.cli": "コマンドライン",
        "source.prefect-ui": "Prefect UI",
        "source.deadline": "期限",
        "role.viewer": "閲覧者",
        "role.operator": "オペレーター",
        "role.admin": "管理者",
    },
}


def current_language() -> str:
    lang = st.session_state.get("lang", DEFAULT_LANGUAGE)
    return lang if lang in TEXT else DEFAULT_LANGUAGE


def translate(lang: str, key: str, /, **params: Any) -> str:
    """The text for `key` in `lang` (English if that language lacks it), with params filled in."""
    template = TEXT.get(lang, {}).get(key) or TEXT[DEFAULT_LANGUAGE].get(key) or key
    return template.format(**params) if params else template


def t(key: str, /, **params: Any) -> str:
    """The text for `key` in this browser session's language."""
    return translate(current_language(), key, **params)


def label(kind: str, name: str | None) -> str:
    """A plain-language name for a data value (choice, case type, state, ...); unknown ones as-is."""
    if not name:
        return "—"
    key = f"{kind}.{name}"
    lang = current_language()
    if key in TEXT.get(lang, {}) or key in TEXT[DEFAULT_LANGUAGE]:
        return translate(lang, key)
    return name
