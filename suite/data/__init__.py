"""Data: loaders for real data sets and generators for synthetic ones."""
