"""Counting parameters: the one ledger every method's count comes from, and the solver that finds
the setting meeting a budget."""
