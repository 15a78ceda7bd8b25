"""The configuration: the schema (every key, its default, meaning and allowed values), what a
key accepts, conf/'s groups, bad input in one line, and what Hydra needs before it composes.
"""
