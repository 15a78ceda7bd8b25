"""Training: the loop, top to bottom, and what it needs: datasets as tensors, batches by
(seed, step), evaluations, probes, and the fast paths with their check.
"""
