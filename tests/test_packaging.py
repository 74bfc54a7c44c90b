"""What a non-editable install puts into site-packages: the two packages and the scheduler entry, nothing else."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_wheel_holds_only_the_packages_and_the_scheduler_entry(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path), str(ROOT)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("newsletter-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top == {"newsletter", "subscribers", "scheduler.py"}
    # The email templates travel inside the package, so an installed copy renders without the source tree.
    assert "newsletter/templates/digest.mjml.j2" in names
    assert "newsletter/templates/digest.txt.j2" in names
