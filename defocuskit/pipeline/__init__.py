"""``defocuskit synth``: the run's configuration (:mod:`~defocuskit.pipeline.config`), its
plan before anything is written (:mod:`~defocuskit.pipeline.plan`), the run itself
(:mod:`~defocuskit.pipeline.synth`), one shard of it (:mod:`~defocuskit.pipeline.shard`) and
the preparation of each sample (:mod:`~defocuskit.pipeline.prepare`). One image is rendered
by the render recipe, :mod:`defocuskit.recipe`."""
