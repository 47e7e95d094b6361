"""The incident's logic as plain objects: no gRPC, no asyncio, no clock reads.

Time and randomness come in as arguments; I/O is requested through effects and
answered by whoever drives the object (a gRPC service or the explorer).
"""
