"""Curating a dataset: measures, selections, splits, contact sheets."""
