"""Distributions: wheel file names, core metadata, tag ranking, RECORD files, installed dists.

``kea.dist.requirements`` (requirements files) lives here too but is a separate concern.
"""
