"""The layers and models: the from-scratch normalizations (closed-form backward passes) and
their registry, and the replica-batched networks and theirs.
"""
