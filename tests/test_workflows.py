"""The GitHub Actions workflows: CI runs the README's test command and the fast tier on
every Python the tap declares; a release publishes only a tag equal to the version,
through trusted publishing; the lint step catches a broken workflow."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"


def workflow(name: str) -> dict:
    loaded = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the key `on` as True.
    loaded["on"] = loaded.pop(True, loaded.get("on"))
    return loaded


def steps_text(job: dict) -> str:
    return "\n".join(str(step.get("run", "")) for step in job["steps"])


def test_ci_runs_the_whole_suite_and_the_fast_tier_on_every_declared_python():
    ci = workflow("ci.yml")
    assert set(ci["on"]) == {"push", "pull_request"}
    assert ci["permissions"] == {"contents": "read"}
    suite, fast = ci["jobs"]["suite"], ci["jobs"]["fast"]
    # .ci/run's apt packages, then the README's test command.
    assert "apt-get install" in steps_text(suite) and "postgresql" in steps_text(suite)
    assert "bash scripts/test.sh\n" in steps_text(suite) + "\n"
    assert "bash scripts/test.sh --fast" in steps_text(fast)
    classifiers = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["classifiers"]
    declared = [c.rsplit(" ", 1)[1] for c in classifiers if re.fullmatch(r".*:: 3\.\d+", c)]
    assert fast["strategy"]["matrix"]["python"] == declared
    assert declared[0] == "3.11"


def test_a_release_publishes_a_tag_equal_to_the_version_with_trusted_publishing():
    release = workflow("release.yml")
    assert release["on"] == {"push": {"tags": ["v*"]}}
    assert release["permissions"] == {"contents": "read"}
    build, publish = release["jobs"]["build"], release["jobs"]["publish"]
    assert '"$TAG" != "v$version"' in steps_text(build)
    assert "python -m build --outdir dist .\n" in steps_text(build)
    assert "python -m build --outdir dist sandbox" in steps_text(build)
    assert "twine check --strict" in steps_text(build)
    # Only the publishing job may mint an OIDC token, inside an environment.
    assert "permissions" not in build
    assert publish["permissions"] == {"id-token": "write"}
    assert publish["environment"]["name"]
    (action,) = [s for s in publish["steps"] if "gh-action-pypi-publish" in s.get("uses", "")]
    # No stored token: trusted publishing takes none.
    assert not {"password", "user"} & set(action.get("with", {}))


def test_every_action_is_pinned_at_least_to_a_major_version():
    for path in WORKFLOWS.glob("*.yml"):
        for ref in re.findall(r"uses: (\S+)", path.read_text()):
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@(v\d+|release/v\d+|[0-9a-f]{40})", ref), ref


def test_the_lint_step_catches_a_broken_workflow(tmp_path):
    """scripts/test.sh runs check-jsonschema on the workflows: it passes them as they are
    and refuses one whose job lost its runs-on."""

    def lint(*files: Path) -> subprocess.CompletedProcess:
        return subprocess.run(
            [
                str(CHECK_JSONSCHEMA),
                "--builtin-schema",
                "vendor.github-workflows",
                *map(str, files),
            ],
            capture_output=True,
            text=True,
            check=False,
        )

    assert (
        "check-jsonschema --builtin-schema vendor.github-workflows"
        in (ROOT / "scripts" / "test.sh").read_text()
    )
    shipped = sorted(WORKFLOWS.glob("*.yml"))
    assert lint(*shipped).returncode == 0
    broken = tmp_path / "release.yml"
    broken.write_text((WORKFLOWS / "release.yml").read_text().replace("runs-on:", "run-on:"))
    done = lint(broken)
    assert done.returncode == 1
    assert "'runs-on' is a required property" in done.stdout
