"""Analyses that work on any eosdyn dataset (see issue: analysis)."""
