"""Analysis and reporting: run folders as DataFrames, results tables, the claims and their
rules, figures' plumbing, the depth and loss-surface measures, the sweep's comparison and
``make report``.
"""
