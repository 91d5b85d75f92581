"""What a release and a team's install do, in fresh virtualenvs: both distributions build
and pass `twine check`; the README's manual install gives both commands it names; a
`pip install git+...` of the repository gives a working tap.

Installs take their dependencies at the locked versions (PIP_CONSTRAINT), so they come
from the registry's cache quickly and as the suite's own environment has them.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements" / "lock.txt"
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]

pytestmark = pytest.mark.slow


def fresh_venv(path: Path) -> Path:
    """A virtualenv with pip; returns its bin folder."""
    venv.create(path, with_pip=True)
    return path / "bin"


def locked_env(bin_dir: Path) -> dict[str, str]:
    """The environment of a command run "in" the venv: its bin first on PATH, the lock as
    constraints, and nothing of the test environment's own venv."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(bin_dir.parent)
    env["PIP_CONSTRAINT"] = str(LOCK)
    return env


def shell(command: str, *, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    done = subprocess.run(
        ["bash", "-c", command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert done.returncode == 0, f"{command}\n{(done.stdout + done.stderr)[-3000:]}"
    return done


def test_both_distributions_build_and_pass_twine_check(tmp_path):
    """What .github/workflows/release.yml does before it publishes."""
    dist = tmp_path / "dist"
    for project in (ROOT, ROOT / "sandbox"):
        done = subprocess.run(
            [sys.executable, "-m", "build", "--outdir", str(dist), str(project)],
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    built = sorted(path.name for path in dist.iterdir())
    assert built == [
        f"mokapen_sandbox-{VERSION}-py3-none-any.whl",
        f"mokapen_sandbox-{VERSION}.tar.gz",
        f"tap_mokapen-{VERSION}-py3-none-any.whl",
        f"tap_mokapen-{VERSION}.tar.gz",
    ]
    checked = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *sorted(map(str, dist.iterdir()))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.count("PASSED") == 4, checked.stdout

    # Each distribution's metadata: its own name and readme, the one version.
    with zipfile.ZipFile(dist / f"mokapen_sandbox-{VERSION}-py3-none-any.whl") as wheel:
        metadata = wheel.read(f"mokapen_sandbox-{VERSION}.dist-info/METADATA").decode()
        assert not any(name.startswith("tap_mokapen/") for name in wheel.namelist())
    assert f"\nVersion: {VERSION}\n" in metadata and "# mokapen-sandbox" in metadata
    with tarfile.open(dist / f"tap_mokapen-{VERSION}.tar.gz") as sdist:
        pkg_info = sdist.extractfile(f"tap_mokapen-{VERSION}/PKG-INFO")
        assert pkg_info is not None
        assert "# tap-mokapen" in pkg_info.read().decode()


def readme_manual_block() -> list[str]:
    """The lines of the README's "Install and run by hand" block."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Install and run by hand", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert block is not None
    return block[1].splitlines()


def readme_install_lines() -> list[str]:
    """The `pip install` lines of the README's "Install and run by hand" block."""
    return [line for line in readme_manual_block() if line.startswith("pip install ")]


def test_the_readmes_manual_install_gives_both_commands(tmp_path):
    lines = readme_install_lines()
    assert lines, "the README's manual install has no pip install line"
    bin_dir = fresh_venv(tmp_path / "venv")
    env = locked_env(bin_dir)
    for line in lines:
        # Exactly the README's line, run from the checkout's root as the README says.
        shell(line, cwd=ROOT, env=env)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for command in ("tap-mokapen", "mokapen-sandbox"):
        assert (bin_dir / command).is_file(), f"{command}: command not found"
        helped = shell(f"{command} --help", cwd=elsewhere, env=env)
        assert "usage" in helped.stdout.lower()

    # The rest of the block, word for word but for the port it says to choose, in a
    # folder of its own; the sandbox it starts in the background is stopped after.
    walk = [line for line in readme_manual_block() if not line.startswith("pip install ")]
    port = _free_port()
    script = "\n".join(["set -euo pipefail", *walk, "kill %1"])
    script = script.replace("PORT=8765", f"PORT={port}", 1)
    assert f"PORT={port}" in script, "the walk no longer names its port as PORT=8765"
    # Fewer records than the README's, so both syncs stay within one minute's throttle.
    script = script.replace("--contacts 5000 --tasks 2000", "--contacts 600 --tasks 200", 1)
    assert "--contacts 600" in script
    shell(script, cwd=elsewhere, env=env)
    catalog = (elsewhere / "catalog.json").read_text()
    assert '"tap_stream_id":"contacts"' in catalog.replace(" ", "")
    messages = (elsewhere / "messages.jsonl").read_text().splitlines()
    assert sum('"type":"RECORD"' in m.replace(" ", "") for m in messages) > 800
    assert '"bookmarks"' in (elsewhere / "state.json").read_text()


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_git_install_of_the_repository_gives_a_working_tap(tmp_path):
    """`pip install git+https://.../tap-mokapen@v<version>`, with a clone of this
    repository's HEAD standing in for the remote."""
    remote = tmp_path / "tap-mokapen"
    subprocess.run(
        ["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(remote)],
        check=True,
        capture_output=True,
    )
    bin_dir = fresh_venv(tmp_path / "venv")
    env = locked_env(bin_dir)
    shell(f"pip install --quiet 'git+file://{remote}'", cwd=tmp_path, env=env)
    about = shell("tap-mokapen --about --format=json", cwd=tmp_path, env=env)
    assert f'"version": "{VERSION}"' in about.stdout
    assert '"name": "tap-mokapen"' in about.stdout
    # The tap alone: the sandbox is a distribution of its own.
    assert not (bin_dir / "mokapen-sandbox").exists()
