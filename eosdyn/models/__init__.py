"""Implementations of the simulations: toy maps (:mod:`.toy`), random QRM (:mod:`.qrm`), Taylor-expanded
network (:mod:`.taylor`). Users import them through the public namespaces :mod:`eosdyn.toy`,
:mod:`eosdyn.qrm` and :mod:`eosdyn.taylor`, which re-export exactly their ``__all__``."""
