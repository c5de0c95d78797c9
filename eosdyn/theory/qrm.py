"""Theory of random quadratic regression models (Section 4, Appendix C)."""

__all__: list[str] = []
