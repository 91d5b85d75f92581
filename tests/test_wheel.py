"""The built wheel is the tap alone and carries its schemas: --discover works from a plain
install elsewhere."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_wheel_holds_the_tap_alone_and_discovers_when_installed(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("tap_mokapen-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        top_folders = {name.split("/")[0] for name in archive.namelist()}
        entry_points = archive.read(
            next(n for n in archive.namelist() if n.endswith("entry_points.txt"))
        )
    # The tap alone: the sandbox is its own distribution (sandbox/pyproject.toml).
    dist_info = "-".join(wheel.name.split("-")[:2]) + ".dist-info"
    assert top_folders == {"tap_mokapen", dist_info}
    assert b"mokapen-sandbox" not in entry_points
    target = tmp_path / "venv"
    venv.create(target, with_pip=False)
    python = target / "bin" / "python"
    site = Path(
        subprocess.check_output(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
        ).strip()
    )
    # The tap's dependencies come from the test environment; the tap itself only from
    # the wheel (a path line in a .pth does not bring in the editable install's finder).
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(site),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    located = subprocess.check_output(
        [python, "-c", "import tap_mokapen; print(tap_mokapen.__file__)"],
        cwd=elsewhere,
        text=True,
    )
    assert located.startswith(str(site))
    assert (site / "tap_mokapen" / "schemas" / "contacts.json").is_file()

    done = subprocess.run(
        [python, "-m", "tap_mokapen", "--discover"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    streams = {s["tap_stream_id"]: s for s in json.loads(done.stdout)["streams"]}
    shipped = {path.stem for path in (ROOT / "tap_mokapen" / "schemas").glob("*.json")}
    assert set(streams) == shipped | {"rejected_records"}
    assert shipped >= {"contacts", "tasks", "organizations"}
    assert "updated_at" in streams["contacts"]["schema"]["properties"]
