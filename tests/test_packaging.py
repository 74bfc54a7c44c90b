"""What an install puts into site-packages: the two packages and the scheduler entry, nothing else (and, when
editable, nothing copied that would go stale)."""

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


def test_an_editable_install_runs_the_scheduler_of_the_checkout(tmp_path: Path) -> None:
    """A copy of scheduler.py in site-packages (what force-including it did) would go stale at the first edit."""
    imported = subprocess.run([sys.executable, "-c", "import scheduler; print(scheduler.__file__)"], cwd=tmp_path,
                              capture_output=True, text=True, check=True, env={"PATH": "/usr/bin:/bin"})
    assert Path(imported.stdout.strip()).resolve() == ROOT / "scheduler.py"
