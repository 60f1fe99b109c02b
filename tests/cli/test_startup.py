"""Start-up of the command lines: help and version answer without importing the heavy libraries.

Measured on 2 cores: importing torch (also through webdataset) costs over a second, every other
import of these CLIs together about 0.2 s. Timing is machine-dependent, so the tests check the
import graph instead: after ``--help`` / ``--version`` none of these modules may be loaded.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.compvid import main as compvid_main
from cli.mvcgc import main as mvcgc_main

HEAVY = ("torch", "torchvision", "webdataset", "matplotlib", "cv2")
REPO = Path(__file__).resolve().parents[2]

# Runs the CLI in a fresh interpreter (this one has long imported torch) and prints what got loaded.
_PROBE = """
import json, sys
from {module} import main
for args in {invocations!r}:
    main(args, standalone_mode=False)
print(json.dumps(sorted(name for name in {heavy!r} if name in sys.modules)))
"""


def heavy_modules_after(module: str, invocations: list[list[str]]) -> list[str]:
    code = _PROBE.format(module=module, invocations=invocations, heavy=HEAVY)
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("module, invocations", [
    ("cli.compvid", [["--help"], ["--version"], ["inspect", "--help"], ["shard", "--help"], ["verify", "--help"],
                     ["synth", "--help"]]),
    ("cli.mvcgc", [["--help"], ["--version"], ["pretrain", "--help"], ["retrieve", "--help"], ["linear", "--help"],
                   ["report", "--help"]]),
])
def test_help_and_version_import_no_heavy_library(module, invocations):
    assert heavy_modules_after(module, invocations) == []


@pytest.mark.parametrize("main, name", [(compvid_main, "compvid"), (mvcgc_main, "mvcgc")])
def test_version_comes_from_the_package_metadata(main, name):
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"{name}, version {version('compvid-mvcgc')}"
