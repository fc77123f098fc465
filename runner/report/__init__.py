"""Stored runs -> HTML: the site (index, experiment pages, verdicts.json), compare pages,
charts and their layout, highlighting, and the render cache.
"""
