"""The comparators rpg-bench runs against RPG, one module each. Imports torch, never suite."""
