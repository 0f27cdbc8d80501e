"""Build hook: the package carries the sample repository as `server/sample`.

The sample's one copy is `storage_root/` of the checkout (what `python -m server` serves and the
README's tour walks through). A built package gets a copy of it, without its store (`.sandbox`),
so that the pytest plugin of an installed package starts on the same content
(server/testing/sandbox.py, `sample_root`). An editable install reads `storage_root/` itself.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SAMPLE = Path(__file__).resolve().parent / "storage_root"


class BuildWithSample(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        target = Path(self.build_lib, "server", "sample")
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(SAMPLE, target, ignore=lambda at, names: [".sandbox"] if Path(at) == SAMPLE else [])


setup(cmdclass={"build_py": BuildWithSample})
