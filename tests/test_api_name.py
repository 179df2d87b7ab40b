"""gdbstub.launch stays the API function whatever else is imported.

The program launcher used to be a submodule gdbstub/launch.py; a submodule loaded after the
package replaces the package attribute of the same name, which made `gdbstub.launch(...)` fail
with "'module' object is not callable" once anything had imported gdbstub.cli (found by the full
suite on one worker). It is gdbstub/launcher.py now; this keeps the name clash from coming back.
Each order is tried in a fresh interpreter, since imports are cached per process.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

CHECK = "import gdbstub.api; assert gdbstub.launch is gdbstub.api.launch, gdbstub.launch"


@pytest.mark.parametrize(
    "first",
    [
        "import gdbstub",
        "import gdbstub.cli",
        "from gdbstub.launcher import Launcher",
        "import gdbstub.server",
        "import gdbstub, gdbstub.launcher, gdbstub.cli",
    ],
)
def test_launch_is_the_api_function(first: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", f"{first}\nimport gdbstub\n{CHECK}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
