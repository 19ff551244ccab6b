"""What ``alertpack package`` imports: start-up is part of a detector's time."""

from __future__ import annotations

import subprocess
import sys

from alertpack.sample import make_visit, write_visit

#: modules the package command on files must never load (a few tenths of a second each)
NEVER_IMPORTED = (
    "lsst.pipe.base", "lsst.daf.butler", "pandas", "matplotlib", "astropy.nddata", "fsspec",
)


def test_package_command_on_files_imports_only_what_it_needs(tmp_path):
    visit_dir = tmp_path / "visit"
    write_visit(make_visit(n_sources=6, image_shape=(300, 300), seed=4), visit_dir)
    code = (
        "import sys\n"
        "from alertpack.cli import main\n"
        f"assert main(['package', '--visit-dir', {str(visit_dir)!r}, '-o', "
        f"{str(tmp_path / 'out')!r}]) == 0\n"
        f"loaded = [m for m in {NEVER_IMPORTED!r} if m in sys.modules]\n"
        "assert not loaded, loaded\n"
        "import importlib.util\n"
        "if importlib.util.find_spec('fsspec') is not None:\n"
        "    import fsspec  # still importable after the command kept it out of lsst.resources\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert list((tmp_path / "out").glob("*.avro"))
