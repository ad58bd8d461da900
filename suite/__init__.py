"""rpg-bench: the engine that runs RPG and its comparators at matched parameter budgets."""

__version__ = "0.1.0"
