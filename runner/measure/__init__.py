"""Measuring on this machine: the run pipeline (plan, resume, reuse, extra rounds, the
console's summary), the order of probe processes, data files, progress and Ctrl-C.
"""
