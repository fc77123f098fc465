"""Stored runs -> numbers and judgements: the tidy frame, robust statistics, paired and
sequential verdicts with their extra-round planning, noise warnings, the machine conditions a
verdict rests on, run comparisons, and the frame written as CSV, Parquet or JSON.
"""
