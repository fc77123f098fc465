"""The vocabulary every stage shares: the parameters a scenario may set and the rules for
combining them, the frozen values that cross stages (Scenario, Plan, ProcessRecord, specs),
the metrics, which scenarios a check means, units, names, and the errors with their exit
statuses. Imports nothing of alloclab above it.
"""
