"""One shared driver per state kind: validate → labelled grid → kernel → fates → label.

* :mod:`eosdyn.drivers.pair` — maps on a scalar pair (x, y) per member (``pair_map``);
* :mod:`eosdyn.drivers.vector` — maps on a vector state (``vector_map``, ``parameter_gd``);
* :mod:`eosdyn.drivers.flow` — gradient flows on the ``time`` axis (``flow``);
* :mod:`eosdyn.drivers._protocol` — the GD run protocol (fate run, recording run, ``stop``
  modes, fates), written once for every GD driver.

A new toy map is a :class:`eosdyn.systems.System` record, a numba step function in
:mod:`eosdyn.kernels.maps` (one line in its kind's dispatch) and a small spec
(:class:`~eosdyn.drivers.pair.PairMap` or :class:`~eosdyn.drivers.vector.VectorMap`); see
``docs/toy.md``.
"""
