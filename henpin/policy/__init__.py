"""The owner's rules from `policies.yaml`: which cases Henpin settles alone, which go to a person,
how long each wait lasts, and what each refund is.

The file is parsed once, at the edge, into frozen pydantic models; flows receive a typed section
(`policy.return_request`, ...), never a path. A bad file fails with the file, line and key path
of every problem, so the owner can fix it without reading Python. While Henpin runs,
`PolicyHolder` picks up edits and keeps the last good policy in force when an edit is bad.

Evaluation is pure: each section's `recommend(...)` looks only at the case's facts, the clock it
is given and the policy, and returns the action, the rule that decided, the reason in plain words
(and as a code with its values, `reasons`, so the inbox words it in each language) and the inputs
it saw, so a past case can be decided again under another policy (replay).

One module per case type: `cancel_request`, `return_request`, `cancel_by_message`,
`refused_delivery`, `address_error` (henpin/cases/registry.py names each case type's section);
`loading` reads the file; `proposals` holds refund proposals;
`notifications` says what Henpin tells people, and whom.
"""

from henpin.policy._base import (
    Advice,
    Amount,
    Currency,
    Loc,
    MarketplaceId,
    OperatorDeadline,
    PolicyError,
    PolicyProblem,
    Text,
)
from henpin.policy.address_error import (
    AddressErrorAction,
    AddressErrorOperatorPolicy,
    AddressErrorPolicy,
    AddressErrorRecommendation,
    AddressOption,
    OptionMoney,
    RefundAdminFee,
)
from henpin.policy.business_days import add_business_days, is_business_day
from henpin.policy.cancel_by_message import (
    BuyerReply,
    CancelByMessageAction,
    CancelByMessageOperatorPolicy,
    CancelByMessagePolicy,
    CancelByMessageRecommendation,
    ReplyTemplate,
)
from henpin.policy.cancel_request import (
    BUILT_IN_RULES,
    CancelRequestAction,
    CancelRequestPolicy,
    Conditions,
    OperatorPolicy,
    Recommendation,
    Rule,
    RuleName,
)
from henpin.policy.loading import (
    SCHEMA_VERSION,
    Policy,
    PolicyHolder,
    RetentionPolicy,
    check_policy_file,
    load_policy,
    parse_policy,
)
from henpin.policy.notifications import (
    DueSoonRule,
    FeedStalledRule,
    NotificationRule,
    NotificationsPolicy,
    WaitingDigestRule,
)
from henpin.policy.proposals import OrderRefundProposal, RefundProposal
from henpin.policy.refused_delivery import (
    RefusedDeliveryAction,
    RefusedDeliveryOperatorPolicy,
    RefusedDeliveryPolicy,
    RefusedDeliveryRecommendation,
    RefusedDeliveryRefund,
)
from henpin.policy.return_request import (
    ConditionRefund,
    ReturnAction,
    ReturnOperatorPolicy,
    ReturnReasons,
    ReturnRecommendation,
    ReturnRequestPolicy,
)

__all__ = [
    "BUILT_IN_RULES",
    "SCHEMA_VERSION",
    "AddressErrorAction",
    "AddressErrorOperatorPolicy",
    "AddressErrorPolicy",
    "AddressErrorRecommendation",
    "AddressOption",
    "Advice",
    "Amount",
    "BuyerReply",
    "CancelByMessageAction",
    "CancelByMessageOperatorPolicy",
    "CancelByMessagePolicy",
    "CancelByMessageRecommendation",
    "CancelRequestAction",
    "CancelRequestPolicy",
    "ConditionRefund",
    "Conditions",
    "Currency",
    "DueSoonRule",
    "FeedStalledRule",
    "Loc",
    "MarketplaceId",
    "NotificationRule",
    "NotificationsPolicy",
    "OperatorDeadline",
    "OperatorPolicy",
    "OptionMoney",
    "OrderRefundProposal",
    "Policy",
    "PolicyError",
    "PolicyHolder",
    "PolicyProblem",
    "Recommendation",
    "RefundAdminFee",
    "RefundProposal",
    "RefusedDeliveryAction",
    "RefusedDeliveryOperatorPolicy",
    "RefusedDeliveryPolicy",
    "RefusedDeliveryRecommendation",
    "RefusedDeliveryRefund",
    "ReplyTemplate",
    "RetentionPolicy",
    "ReturnAction",
    "ReturnOperatorPolicy",
    "ReturnReasons",
    "ReturnRecommendation",
    "ReturnRequestPolicy",
    "Rule",
    "RuleName",
    "Text",
    "WaitingDigestRule",
    "add_business_days",
    "check_policy_file",
    "is_business_day",
    "load_policy",
    "parse_policy",
]
