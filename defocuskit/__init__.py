"""defocuskit: physically documented synthetic defocus datasets.

Reads all-in-focus image + metric depth pairs, applies a thin-lens camera model
(circle of confusion -> per-pixel Gaussian or disc blur) with a Numba engine and writes
sharded Zarr datasets with full provenance. No torch import anywhere in this package.

Package map (``docs/architecture.md``): ``sources/`` (readers) -> ``pipeline/`` (config,
plan, shard, synth, prepare) -> ``recipe`` (one sample's render) with ``camera/`` (optics,
presets, custom cameras, focus policies) and ``blur/`` (the engine) -> ``dataset/`` (the
Zarr store, output safety, locks, manifest, verify, summary, preview).

Public names: ``from defocuskit import Camera, render, RenderSettings, ...`` (:data:`__all__`).
The modules that once sat flat in this package keep their old import paths
(``defocuskit.store``, ``defocuskit.synth``, ...): :data:`MOVED_MODULES` maps each to its
new home, and importing the old name gives the new module itself.
"""

import importlib
import importlib.abc
import importlib.util
import sys
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("defocuskit")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

# old module path -> new module path (one table; docs/architecture.md lists the layout)
MOVED_MODULES = {
    "defocuskit.optics": "defocuskit.camera.optics",
    "defocuskit.presets": "defocuskit.camera.presets",
    "defocuskit.camera_table": "defocuskit.camera.table",
    "defocuskit.focus": "defocuskit.camera.focus",
    **{f"defocuskit.{m}": f"defocuskit.dataset.{m}"
       for m in ("store", "output", "lock", "manifest", "verify", "summary", "preview")},
    **{f"defocuskit.{m}": f"defocuskit.pipeline.{m}"
       for m in ("config", "plan", "shard", "synth", "prepare")},
}

# public name -> the module that defines it (imported when first used: `import defocuskit`
# stays cheap, no Numba)
_PUBLIC = {
    "Camera": "defocuskit.camera.optics",
    "CameraPreset": "defocuskit.camera.named",
    "get_preset": "defocuskit.camera.presets",
    "list_presets": "defocuskit.camera.named",
    "make_focus_policy": "defocuskit.camera.focus",
    "render": "defocuskit.blur",
    "deconvolve": "defocuskit.deblur",
    "RenderSettings": "defocuskit.recipe",
    "draw_camera": "defocuskit.recipe",
    "draw_cameras": "defocuskit.recipe",
    "render_sample": "defocuskit.recipe",
    "warm_up": "defocuskit.recipe",
    "open_dataset": "defocuskit.dataset.store",
    "write_arrays": "defocuskit.dataset.store",
    "verify_dataset": "defocuskit.dataset.verify",
    "SynthConfig": "defocuskit.pipeline.config",
    "resolve_synth_config": "defocuskit.pipeline.config",
    "run_synth": "defocuskit.pipeline.synth",
    "get_source": "defocuskit.sources",
    "list_sources": "defocuskit.sources",
}

__all__ = ["__version__", "MOVED_MODULES", *_PUBLIC]


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old module path of :data:`MOVED_MODULES` and loads it as the new module
    (the same module object, so patching either name patches both)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname in MOVED_MODULES:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        module = importlib.import_module(MOVED_MODULES[spec.name])
        spec.loader_state = (module.__spec__, module.__loader__)  # the import overwrites them
        return module

    def exec_module(self, module):
        # executed under its new name already; give it back its own spec and loader
        module.__spec__, module.__loader__ = module.__spec__.loader_state


if not any(isinstance(f, _MovedModules) for f in sys.meta_path):
    sys.meta_path.insert(0, _MovedModules())  # before any finder that would look on disk


def __getattr__(name):
    # No module of this package is named like a public name (the blur engine lives in
    # `defocuskit.blur`, the recipe in `defocuskit.recipe`): importing a submodule sets the
    # package attribute of its name, which would shadow this hook for good.
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    if name in {old.rsplit(".", 1)[1] for old in MOVED_MODULES}:
        return importlib.import_module(f"defocuskit.{name}")
    raise AttributeError(f"module 'defocuskit' has no attribute {name!r}")
