"""Texts Henpin sends buyers through Amazon's Messaging API, per language (owner-editable).

Amazon's rules for these texts (Messaging API model, messaging.json: `text` is 1 to 2000
characters, "must not contain HTML" nor e-mail addresses) are checked when the policy is loaded,
so a text Amazon would refuse never reaches a buyer's case. A text is chosen by the buyer's
language of preference (GetAttributes), English when the policy has none in that language.
Placeholders: `{order_id}` (required) and `{marketplace}`.
"""

from __future__ import annotations

import re
import string
from typing import Annotated

from pydantic import AfterValidator, Field

from henpin.domain import Order
from henpin.marketplaces import MARKETPLACES
from henpin.policy._base import owner_error

MESSAGE_PLACEHOLDERS = ("order_id", "marketplace")
#: Room left under Amazon's 2000 characters for the filled-in order id and store name.
MESSAGE_MAX_LENGTH = 1800
_HTML = re.compile(r"<\s*/?\s*[a-zA-Z][^>]*>")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")


def _amazon_accepts(text: str) -> str:
    """Placeholders Henpin fills, `{order_id}` present, no HTML, no e-mail address."""
    allowed = ", ".join("{" + p + "}" for p in MESSAGE_PLACEHOLDERS)
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]
    except ValueError:
        raise owner_error(
            f"a '{{' or '}}' has no partner; placeholders are written {allowed}"
        ) from None
    unknown = [name for name in names if name not in MESSAGE_PLACEHOLDERS]
    if unknown:
        raise owner_error(f"unknown placeholder {{{unknown[0]}}}; use {allowed}")
    if "order_id" not in names:
        raise owner_error("the text must contain {order_id}, so the buyer knows which order")
    if _HTML.search(text):
        raise owner_error("Amazon refuses messages with HTML: write plain text")
    if _EMAIL.search(text):
        raise owner_error("Amazon refuses messages with an e-mail address in them")
    return text


MessageText = Annotated[
    str, Field(min_length=1, max_length=MESSAGE_MAX_LENGTH), AfterValidator(_amazon_accepts)
]

DEFAULT_CONFIRM_ADDRESS: dict[str, str] = {
    "en": (
        "Hello, your parcel for order {order_id} was returned to us as undeliverable. Could you "
        "please confirm your full delivery address (street, number, postcode, city) by replying "
        "to this message? We will then tell you how we can send it again. Thank you."
    ),
    "ja": (
        "ご注文 {order_id} の商品が、お届けできずに当店へ返送されました。お手数ですが、"
        "このメッセージへのご返信で、お届け先の住所(番地、建物名・部屋番号、郵便番号を含む)を"
        "ご確認いただけますでしょうか。確認でき次第、再送の方法をご連絡いたします。"
        "よろしくお願いいたします。"
    ),
    "de": (
        "Guten Tag, Ihr Paket zur Bestellung {order_id} kam als unzustellbar an uns zurück. "
        "Könnten Sie uns bitte Ihre vollständige Lieferadresse (Straße, Hausnummer, Postleitzahl, "
        "Ort) als Antwort auf diese Nachricht bestätigen? Wir teilen Ihnen dann mit, wie wir es "
        "erneut versenden können. Vielen Dank."
    ),
    "fr": (
        "Bonjour, votre colis pour la commande {order_id} nous a été retourné car il n'a pas pu "
        "être livré. Pourriez-vous confirmer votre adresse de livraison complète (rue, numéro, "
        "code postal, ville) en répondant à ce message ? Nous vous dirons ensuite comment nous "
        "pouvons vous le renvoyer. Merci."
    ),
    "it": (
        "Buongiorno, il suo pacco per l'ordine {order_id} ci è stato restituito perché non è "
        "stato possibile consegnarlo. Potrebbe confermare il suo indirizzo di consegna completo "
        "(via, numero civico, CAP, città) rispondendo a questo messaggio? Le diremo poi come "
        "possiamo spedirlo di nuovo. Grazie."
    ),
    "es": (
        "Hola, su paquete del pedido {order_id} nos ha sido devuelto porque no se pudo entregar. "
        "¿Podría confirmarnos su dirección de entrega completa (calle, número, código postal, "
        "ciudad) respondiendo a este mensaje? Le indicaremos después cómo podemos enviárselo de "
        "nuevo. Gracias."
    ),
}


def message_in(texts: dict[str, str], order: Order, language: str) -> str:
    """The text in the buyer's language (English when there is none in it), filled in."""
    template = texts.get(language) or texts["en"]
    m = MARKETPLACES.get(order.marketplace_id)
    return template.format(order_id=order.order_id, marketplace=m.name if m else "Amazon")
