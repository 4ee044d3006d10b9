"""trainer: a lean PyTorch trainer for 2HDED:NET on defocuskit datasets.

Modules: ``model`` (the network), ``pretrained`` (ImageNet encoder weights from a local
file), ``losses`` and ``metrics`` (the paper's, plus the defocus map's), ``defocus`` (a
differentiable per-pixel re-blur), ``thinlens`` (the camera's sigma from depth, in torch),
``selfsup`` (the thesis's self-supervised loss), ``data`` (a Dataset over a defocuskit Zarr
split), ``resize`` (whole-frame resizing), ``config``, ``checkpoint``, ``fit``,
``evaluate``, ``predict``, ``plots``. The command line is ``trainer fit | eval | predict``.
"""
