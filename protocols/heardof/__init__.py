"""Heard-Of rounds and the AMP_f <-> HO_f simulations (spec `heardof.md`), pure sans-IO cores.

- `algorithms`: OneThirdRule, UniformVoting, LastVoting, FloodMin, midpoint approximate agreement.
- `predicates`: communication predicates as checkers over recorded HO traces.
- `machine`: the round machine (`ho_f` and `timeout` modes) speaking `hedgerow.protocols.actions`.
- `messages`: wire messages (tags 50-54) and the value codec for algorithm payloads.
- `amp`, `amp_over_ho`: AMP algorithms and `AmpOverHo` (HO_f -> AMP_f) with completion rules.
- `checker`: exhaustive breadth-first model checking over all HO assignments.
"""
