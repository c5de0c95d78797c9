"""Simulations: toy maps (:mod:`.toy`), random QRM (:mod:`.qrm`), Taylor-expanded network (:mod:`.taylor`)."""
