"""Coordination: compare-and-swap records, leases with fencing tokens, locks, leader election.

A pure state machine (no Ray); ``actors.CoordinatorActor`` hosts it.
"""
