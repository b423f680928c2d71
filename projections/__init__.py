"""Pure, deterministic folds of journal events, and the namespace engine that drives them.

Nothing here knows about Ray.
"""
