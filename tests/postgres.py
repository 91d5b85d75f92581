"""A private PostgreSQL server on loopback for the tests: Debian's binaries, a temp data dir."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path


def _binary(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None
    )
    if not found:
        msg = f"PostgreSQL's {name} was not found: install Debian's postgresql package"
        raise RuntimeError(msg)
    return found


class PostgresServer:
    """initdb + pg_ctl start on a free port; as root, the server runs as user postgres."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.folder = Path(tempfile.mkdtemp(prefix="tap-mokapen-pg-"))
        self.data = self.folder / "data"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.folder, "postgres", "postgres")
        self._run(
            _binary("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync"
        )
        self._run(
            _binary("pg_ctl"),
            "-D",
            str(self.data),
            "-w",
            "-l",
            str(self.folder / "log"),
            "-o",
            f"-p {port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off",
            "start",
        )
        self.sql("CREATE DATABASE mokapen", database="postgres")

    def _run(self, *command: str) -> str:
        if self._as_postgres:
            command = ("runuser", "-u", "postgres", "--", *command)
        return subprocess.run(
            command, check=True, capture_output=True, text=True, cwd=self.folder
        ).stdout

    def sql(self, statement: str, database: str = "mokapen") -> str:
        return self._run(
            _binary("psql"),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-d",
            database,
            "-tA",
            "-c",
            statement,
        ).strip()

    def stop(self) -> None:
        self._run(_binary("pg_ctl"), "-D", str(self.data), "-m", "fast", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)
