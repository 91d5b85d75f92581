"""The built wheel carries its schemas: --discover works from a plain install elsewhere."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_discover_from_an_installed_wheel(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("tap_mokapen-*.whl")
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
