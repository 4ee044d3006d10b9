"""Build hook: the packages, and the bundled sample scenes shipped inside the package.

The packages are ``defocuskit``, ``trainer`` and the command-line front end, whose source
is the repository's ``cli/`` folder and which installs as ``defocuskit_cli`` (a top-level
``cli`` would collide with other projects'). Everything else about the build is in
pyproject.toml. The scenes live once in the source
tree, in the repository's ``samples/`` folder (beside the script that makes them); building
the package copies ``samples/manifest.json`` and ``samples/scenes/*.png`` to
``defocuskit/_samples/``, where ``defocuskit.sources.samples.default_samples_path`` finds
them, so ``defocuskit synth --source samples`` needs no ``--input`` wherever the package is
installed. MANIFEST.in puts the same files in the sdist.
"""

from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

SAMPLES = Path(__file__).resolve().parent / "samples"


class BuildPyWithSamples(build_py):
    """``build_py`` that also copies the sample scenes into ``defocuskit/_samples``."""

    def run(self):
        super().run()
        files = [SAMPLES / "manifest.json", *sorted((SAMPLES / "scenes").glob("*.png"))]
        if not files[0].is_file() or len(files) < 2:
            raise RuntimeError(f"the sample scenes are missing from {SAMPLES}; run "
                               "samples/make_samples.py")
        target = Path(self.build_lib) / "defocuskit" / "_samples"
        for f in files:
            dest = target / f.relative_to(SAMPLES)
            self.mkpath(str(dest.parent))
            self.copy_file(str(f), str(dest))


PACKAGES = [*find_packages(include=["defocuskit", "defocuskit.*", "trainer", "trainer.*"]),
            "defocuskit_cli"]

setup(cmdclass={"build_py": BuildPyWithSamples}, packages=PACKAGES,
      package_dir={"defocuskit_cli": "cli"})
