"""The durable log of a namespace on RocksDB: codec, HLC clock, hash chain, snapshots, verify.

Nothing here knows about projections or Ray.
"""
