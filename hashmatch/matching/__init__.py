"""Matching: signal values of an input against a store's lists, with the evidence a
reviewer needs (list, entry, algorithm, distance, variant).

    matcher.py   MatchConfig (every option, one frozen object), Matcher (thread-safe:
                 one engine per signal type and generation), MatchResult and its hits
    batch.py     batched lookups of precomputed values (256 queries a kernel call)

May import: hashmatch.store, hashmatch.lists, hashmatch.index, hashmatch.isolation and the
layers below.
"""
