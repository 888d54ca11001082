"""Per case type: the questions it asks, the facts it shows and the money it computes.

Pure functions (no I/O): the flows call them to build `Question`s and refunds deterministically,
so a resumed flow rebuilds exactly the same question it asked before.
"""
