"""Theory of the one-datapoint models (Section 3, Appendix B)."""

__all__: list[str] = []
