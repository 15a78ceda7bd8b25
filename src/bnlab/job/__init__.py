"""A job and its run folders: its life cycle (lock, resume, checkpoints, signals, statuses), its
runs and where each metric goes, the files of a run folder, which code made them, and the
process's threads, allocator and seeds.
"""
