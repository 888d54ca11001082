"""Per case type (henpin/cases/<case type>.py): the answers a person gives (each `RunInput` with
its `Literal` choices and their words, henpin/cases/answers.py), the questions it asks, the facts
it shows and the money it computes; registry.py says which flow runs each type, with which policy
section and parameters, and who opens it. Shared by several: the refund confirmation
(refund_confirmation.py), refunds not made (refund_outcomes.py), money (money.py).

Pure functions (no I/O): the flows call them to build `Question`s and refunds deterministically,
so a resumed flow rebuilds exactly the same question it asked before.
"""
