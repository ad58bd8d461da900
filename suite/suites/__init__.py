"""Suites: the TOML files (experiments x methods x budgets x seeds), their loading and checking
(spec), and how a budget becomes a backbone count (budgets)."""
