"""The dataset on disk: the sharded Zarr store (:mod:`~defocuskit.dataset.store`), output
safety and locks (:mod:`~defocuskit.dataset.output`, :mod:`~defocuskit.dataset.lock`), the
file manifest (:mod:`~defocuskit.dataset.manifest`), and what reads a finished dataset back:
:mod:`~defocuskit.dataset.verify`, :mod:`~defocuskit.dataset.summary`,
:mod:`~defocuskit.dataset.preview`."""
