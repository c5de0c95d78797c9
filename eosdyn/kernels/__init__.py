"""Hot loops (numba / BLAS) with plain-array signatures; no xarray in here."""
