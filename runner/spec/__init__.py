"""Experiment specs -> plans: bounded, tag-free YAML loading, the walker that reads every key
with its line, the matrix expansion into scenarios, and the JSON Schema for editors.
"""
