"""Case type 3, a cancel asked by message: ask the buyer to cancel in Your Orders, then wait.

A cancellation the seller makes counts against the seller's cancellation rate, even with the
reason "buyer cancelled"; one the buyer requests in Your Orders does not. So Henpin replies in the
buyer's language (else the marketplace's) asking the buyer to press "Cancel items", waits,
reminds, and only then asks a person. Reply texts live in the policy (owner-editable, versioned with it); their
placeholders are checked when the file is loaded.

Rule names of `recommend`:
  already-cancelled     the order is cancelled already                 → nothing_to_do
  already-shipped       the order has shipped: it cannot be cancelled  → ask_operator
  remind-automatically  `when_wait_ends: remind` and reminders are left → remind
  buyer-did-not-cancel  the wait ended without the buyer's request      → ask_operator
"""

from __future__ import annotations

import string
from datetime import datetime
from typing import Annotated, Literal, NamedTuple

from pydantic import AfterValidator, Field, field_validator, model_validator

from henpin.domain import FulfillmentStatus, Order
from henpin.marketplaces import MARKETPLACES
from henpin.policy._base import (
    Advice,
    Inputs,
    Loc,
    LocatedProblems,
    OperatorDeadline,
    PolicyModel,
    Text,
    as_utc,
    owner_error,
)
from henpin.policy.reasons import Reason, because

PLACEHOLDERS = ("order_id", "buyer_name", "marketplace")
LANGUAGES = ("en", "ja", "de", "fr", "it", "es")
WaitEndChoice = Literal["remind", "ship", "cancel_as_seller"]
CancelByMessageAction = Literal["nothing_to_do", "remind", "ask_operator"]


def _placeholders_known(text: str) -> str:
    """Every `{name}` must be one Henpin fills in; a lone brace is a typo the buyer would see."""
    allowed = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError:
        raise owner_error(
            f"a '{{' or '}}' has no partner; placeholders are written {allowed}"
            " (write {{ or }} for a brace the buyer should see)"
        ) from None
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in PLACEHOLDERS or spec or conversion:
            shown = (
                "{"
                + name
                + (f"!{conversion}" if conversion else "")
                + (f":{spec}" if spec else "")
                + "}"
            )
            raise owner_error(f"unknown placeholder {shown}; use {allowed}")
    return text


def _language(code: str) -> str:
    if code not in LANGUAGES:
        raise owner_error(
            f"unknown language {code!r}; a text is chosen by the buyer's language, one of"
            f" {', '.join(LANGUAGES)} (English for the others)"
        )
    return code


def _has_order_id(text: str) -> bool:
    return any(name == "order_id" for _, name, _, _ in string.Formatter().parse(text))


Language = Annotated[str, AfterValidator(_language)]
Template = Annotated[str, Field(min_length=1, max_length=5000), AfterValidator(_placeholders_known)]


class ReplyTemplate(PolicyModel):
    """The reply in one language: first message and reminder, subject and body."""

    subject: Template
    body: Template
    reminder_subject: Template
    reminder_body: Template
    unknown_buyer_name: Text  # put in {buyer_name} when Amazon did not give the buyer's name

    @model_validator(mode="after")
    def _bodies_name_the_order(self) -> ReplyTemplate:
        missing: list[tuple[Loc, str]] = [
            ((key,), "the text must contain {order_id}, so the buyer knows which order to cancel")
            for key in ("body", "reminder_body")
            if not _has_order_id(getattr(self, key))
        ]
        if missing:
            raise LocatedProblems(missing)
        return self


class BuyerReply(NamedTuple):
    subject: str
    body: str


DEFAULT_REPLIES: dict[str, ReplyTemplate] = {
    "en": ReplyTemplate(
        subject="Your cancellation request for order {order_id}",
        body=(
            "Hello {buyer_name},\n"
            "\n"
            "Thank you for your message about order {order_id} on {marketplace}.\n"
            "\n"
            "We are happy to cancel it. So that the cancellation is recorded correctly, please\n"
            "request it yourself on {marketplace}: go to Your Orders, choose this order and click\n"
            '"Cancel items" (if the order has already shipped, choose "Return or replace items"\n'
            "instead). We will confirm the cancellation as soon as your request reaches us.\n"
            "\n"
            "Thank you, and kind regards\n"
        ),
        reminder_subject="Reminder: please cancel order {order_id} in Your Orders",
        reminder_body=(
            "Hello {buyer_name},\n"
            "\n"
            "We have not yet received your cancellation request for order {order_id}. If you still\n"
            "wish to cancel, please go to Your Orders on {marketplace}, choose this order and click\n"
            '"Cancel items". If we do not hear from you, we may ship the order as placed.\n'
            "\n"
            "Kind regards\n"
        ),
        unknown_buyer_name="customer",
    ),
    "ja": ReplyTemplate(
        subject="ご注文 {order_id} のキャンセルについて",
        body=(
            "{buyer_name}様\n"
            "\n"
            "{marketplace} でのご注文 {order_id} について、ご連絡ありがとうございます。\n"
            "\n"
            "キャンセルを承ります。キャンセルを正しく処理するため、お手数ですが\n"
            "{marketplace} の「注文履歴」からこのご注文を選び、「商品をキャンセル」を押して\n"
            "キャンセルをリクエストしてください(すでに発送済みの場合は「返品・交換」から\n"
            "お手続きください)。リクエストを確認しだい、キャンセルを完了いたします。\n"
            "\n"
            "よろしくお願いいたします。\n"
        ),
        reminder_subject="【再送】ご注文 {order_id} のキャンセルのお願い",
        reminder_body=(
            "{buyer_name}様\n"
            "\n"
            "ご注文 {order_id} のキャンセルのリクエストがまだ届いておりません。\n"
            "キャンセルをご希望の場合は、{marketplace} の「注文履歴」からこのご注文を選び、\n"
            "「商品をキャンセル」を押してください。ご連絡がない場合は、ご注文どおり\n"
            "発送させていただくことがあります。\n"
            "\n"
            "よろしくお願いいたします。\n"
        ),
        unknown_buyer_name="お客",
    ),
    "de": ReplyTemplate(
        subject="Ihre Stornierungsanfrage zur Bestellung {order_id}",
        body=(
            "Hallo {buyer_name},\n"
            "\n"
            "vielen Dank für Ihre Nachricht zu Ihrer Bestellung {order_id} bei {marketplace}.\n"
            "\n"
            "Wir stornieren die Bestellung gern. Damit die Stornierung richtig erfasst wird,\n"
            "beantragen Sie sie bitte selbst bei {marketplace}: Öffnen Sie „Meine Bestellungen“,\n"
            "wählen Sie diese Bestellung und klicken Sie auf „Artikel stornieren“ (ist die Bestellung\n"
            "bereits versandt, wählen Sie „Artikel zurücksenden oder ersetzen“). Sobald Ihre Anfrage\n"
            "bei uns eingeht, bestätigen wir die Stornierung.\n"
            "\n"
            "Vielen Dank und freundliche Grüße\n"
        ),
        reminder_subject="Erinnerung: Bitte stornieren Sie die Bestellung {order_id} selbst",
        reminder_body=(
            "Hallo {buyer_name},\n"
            "\n"
            "Ihre Stornierungsanfrage zur Bestellung {order_id} ist noch nicht bei uns eingegangen.\n"
            "Wenn Sie weiterhin stornieren möchten, öffnen Sie bitte „Meine Bestellungen“ bei\n"
            "{marketplace}, wählen Sie diese Bestellung und klicken Sie auf „Artikel stornieren“.\n"
            "Hören wir nichts von Ihnen, versenden wir die Bestellung möglicherweise wie bestellt.\n"
            "\n"
            "Freundliche Grüße\n"
        ),
        unknown_buyer_name="liebe Kundin, lieber Kunde",
    ),
    "fr": ReplyTemplate(
        subject="Votre demande d'annulation de la commande {order_id}",
        body=(
            "Bonjour {buyer_name},\n"
            "\n"
            "Merci pour votre message concernant la commande {order_id} sur {marketplace}.\n"
            "\n"
            "Nous annulerons volontiers cette commande. Pour que l'annulation soit enregistrée\n"
            "correctement, veuillez la demander vous-même sur {marketplace} : allez dans « Vos\n"
            "commandes », choisissez cette commande et cliquez sur « Annuler des articles » (si la\n"
            "commande a déjà été expédiée, choisissez « Retourner ou remplacer des articles »).\n"
            "Nous confirmerons l'annulation dès réception de votre demande.\n"
            "\n"
            "Merci et bien cordialement\n"
        ),
        reminder_subject="Rappel : annulation de la commande {order_id} dans Vos commandes",
        reminder_body=(
            "Bonjour {buyer_name},\n"
            "\n"
            "Nous n'avons pas encore reçu votre demande d'annulation pour la commande {order_id}.\n"
            "Si vous souhaitez toujours annuler, allez dans « Vos commandes » sur {marketplace},\n"
            "choisissez cette commande et cliquez sur « Annuler des articles ». Sans nouvelles de\n"
            "votre part, nous pourrions expédier la commande comme prévu.\n"
            "\n"
            "Bien cordialement\n"
        ),
        unknown_buyer_name="chère cliente, cher client",
    ),
    "it": ReplyTemplate(
        subject="La sua richiesta di annullamento dell'ordine {order_id}",
        body=(
            "Gentile {buyer_name},\n"
            "\n"
            "grazie per il suo messaggio sull'ordine {order_id} su {marketplace}.\n"
            "\n"
            "Siamo lieti di annullarlo. Affinché l'annullamento venga registrato correttamente, la\n"
            "preghiamo di richiederlo direttamente su {marketplace}: vada in «I miei ordini», scelga\n"
            "questo ordine e clicchi su «Annulla articoli» (se l'ordine è già stato spedito, scelga\n"
            "«Restituisci o sostituisci articoli»). Confermeremo l'annullamento non appena\n"
            "riceveremo la sua richiesta.\n"
            "\n"
            "Grazie e cordiali saluti\n"
        ),
        reminder_subject="Promemoria: annulli l'ordine {order_id} da I miei ordini",
        reminder_body=(
            "Gentile {buyer_name},\n"
            "\n"
            "non abbiamo ancora ricevuto la sua richiesta di annullamento dell'ordine {order_id}.\n"
            "Se desidera ancora annullarlo, vada in «I miei ordini» su {marketplace}, scelga questo\n"
            "ordine e clicchi su «Annulla articoli». Se non riceviamo sue notizie, potremmo spedire\n"
            "l'ordine così come è stato effettuato.\n"
            "\n"
            "Cordiali saluti\n"
        ),
        unknown_buyer_name="cliente",
    ),
    "es": ReplyTemplate(
        subject="Su solicitud de cancelación del pedido {order_id}",
        body=(
            "Hola, {buyer_name}:\n"
            "\n"
            "Gracias por su mensaje sobre el pedido {order_id} en {marketplace}.\n"
            "\n"
            "Con gusto lo cancelaremos. Para que la cancelación quede registrada correctamente, le\n"
            "rogamos que la solicite usted mismo en {marketplace}: vaya a «Mis pedidos», elija este\n"
            "pedido y haga clic en «Cancelar productos» (si el pedido ya se ha enviado, elija\n"
            "«Devolver o reemplazar productos»). Confirmaremos la cancelación en cuanto recibamos su\n"
            "solicitud.\n"
            "\n"
            "Gracias y un cordial saludo\n"
        ),
        reminder_subject="Recordatorio: cancele el pedido {order_id} en Mis pedidos",
        reminder_body=(
            "Hola, {buyer_name}:\n"
            "\n"
            "Todavía no hemos recibido su solicitud de cancelación del pedido {order_id}. Si aún\n"
            "desea cancelarlo, vaya a «Mis pedidos» en {marketplace}, elija este pedido y haga clic\n"
            "en «Cancelar productos». Si no recibimos noticias suyas, es posible que enviemos el\n"
            "pedido tal como se realizó.\n"
            "\n"
            "Un cordial saludo\n"
        ),
        unknown_buyer_name="estimado cliente",
    ),
}


class CancelByMessageOperatorPolicy(OperatorDeadline):
    """How long an operator has to choose when the buyer did not cancel, and the choice made
    for them when nobody does."""

    on_deadline: WaitEndChoice = "remind"
    on_deadline_after_last_reminder: Literal["ship", "cancel_as_seller"] = "ship"


class CancelByMessageRecommendation(Advice):
    """What policy recommends when the wait for the buyer's own cancel request has ended."""

    action: CancelByMessageAction


class CancelByMessagePolicy(PolicyModel):
    """A buyer asked to cancel by message: reply, wait for their own request, remind, ask."""

    wait_hours: float = Field(default=48, gt=0, le=24 * 14)
    reminders: int = Field(default=1, ge=0, le=5)
    when_wait_ends: Literal["ask_operator", "remind"] = "ask_operator"
    operator: CancelByMessageOperatorPolicy = CancelByMessageOperatorPolicy()
    replies: dict[Language, ReplyTemplate] = Field(default_factory=lambda: dict(DEFAULT_REPLIES))

    @field_validator("replies")
    @classmethod
    def _english_for_the_rest(cls, replies: dict[str, ReplyTemplate]) -> dict[str, ReplyTemplate]:
        if "en" not in replies:
            raise owner_error(
                "give an `en` reply: it is sent on marketplaces whose language has no reply here"
            )
        return replies

    def reply(
        self, order: Order, *, reminder: bool = False, language: str | None = None
    ) -> BuyerReply:
        """The reply (or the reminder) to the buyer, in `language` (the buyer's, from Amazon)
        or else the marketplace's; English when that language has no reply in the policy."""
        m = MARKETPLACES.get(order.marketplace_id)
        wanted = language or (m.language if m else "en")
        template = self.replies.get(wanted) or self.replies["en"]
        values = {
            "order_id": order.order_id,
            "buyer_name": order.buyer_name or template.unknown_buyer_name,
            "marketplace": m.name if m else "Amazon",
        }
        if reminder:
            return BuyerReply(
                template.reminder_subject.format(**values), template.reminder_body.format(**values)
            )
        return BuyerReply(template.subject.format(**values), template.body.format(**values))

    def deadline_choice(self, reminders_sent: int) -> WaitEndChoice:
        """The choice made for the operator when they do not answer in time."""
        if self.operator.on_deadline == "remind" and reminders_sent >= self.reminders:
            return self.operator.on_deadline_after_last_reminder
        return self.operator.on_deadline

    def recommend(
        self, order: Order, reminders_sent: int, now: datetime
    ) -> CancelByMessageRecommendation:
        """What to do once the wait for the buyer's own cancel request has ended."""
        left = max(self.reminders - reminders_sent, 0)
        inputs: Inputs = {
            "order_id": order.order_id,
            "marketplace_id": order.marketplace_id,
            "fulfillment_status": order.fulfillment_status.value,
            "buyer_requested_cancel": order.has_buyer_cancel_request,
            "reminders_sent": reminders_sent,
            "reminders_left": left,
            "wait_hours": self.wait_hours,
            "on_deadline": self.deadline_choice(reminders_sent),
            "evaluated_at": as_utc(now).isoformat(),
        }

        def says(
            action: CancelByMessageAction, rule: str, reason: Reason
        ) -> CancelByMessageRecommendation:
            return CancelByMessageRecommendation(
                action=action, rule=rule, inputs=inputs, **reason.fields()
            )

        status = order.fulfillment_status
        if status is FulfillmentStatus.CANCELLED:
            return says("nothing_to_do", "already-cancelled", because("order-already-cancelled"))
        if status in (FulfillmentStatus.SHIPPED, FulfillmentStatus.PARTIALLY_SHIPPED):
            return says("ask_operator", "already-shipped", because("shipped-refuse-or-return"))
        if self.when_wait_ends == "remind" and left > 0:
            return says(
                "remind",
                "remind-automatically",
                because(
                    "remind-automatically", number=reminders_sent + 1, reminders=self.reminders
                ),
            )
        return says(
            "ask_operator",
            "buyer-did-not-cancel",
            because(
                "buyer-did-not-cancel-remind" if left > 0 else "buyer-did-not-cancel",
                sent=reminders_sent,
            ),
        )
