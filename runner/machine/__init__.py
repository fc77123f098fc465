"""This machine: its fingerprint (the facts that can change a measurement), the conditions a
scenario needs (preconditions), and whether a scenario fits in memory and disk (guard).
"""
