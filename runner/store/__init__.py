"""Results on disk: run folders (write, read, check what may come from elsewhere, pick the run
a report shows or a run resumes), per-process iterations, the run lock, machine labels, and
archives that carry runs between machines.
"""
