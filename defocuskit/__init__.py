"""defocuskit: physically documented synthetic defocus datasets.

Reads all-in-focus image + metric depth pairs, applies a thin-lens camera model
(circle of confusion -> per-pixel Gaussian or disc blur) with a Numba engine and writes
sharded Zarr datasets with full provenance. No torch import anywhere in this package.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("defocuskit")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__", "Camera", "deconvolve", "render"]


def __getattr__(name):
    # Lazy re-exports keep `import defocuskit` cheap (no numba import on `import defocuskit`).
    # No submodule is named like a re-export (the blur engine lives in `defocuskit.blur`):
    # importing a submodule sets the package attribute of its name, which would shadow
    # this hook for good.
    if name == "Camera":
        from defocuskit.optics import Camera

        return Camera
    if name == "render":
        from defocuskit.blur import render

        return render
    if name == "deconvolve":
        from defocuskit.deblur import deconvolve

        return deconvolve
    raise AttributeError(f"module 'defocuskit' has no attribute {name!r}")
