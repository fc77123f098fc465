"""Experiment specs -> plans: the key tables and limits, bounded, tag-free YAML loading, the
walker that reads every key with its line, the checks and their scopes, the matrix expansion
into scenarios, and the JSON Schema for editors.
"""
