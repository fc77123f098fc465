"""Measuring on other machines over SSH: hosts and fleet files, the shared connection and the
remote executor, and running a fleet.
"""
