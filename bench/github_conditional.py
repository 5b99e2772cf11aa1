"""GitHub conditional requests: requests and rate-limit points of a first and an unchanged sync.

Syncs an emulated organization (the kit's fourteen repositories, repeated to --repos) through
the real PyGithub against the kit's local GitHub server and prints what each sync sent, how many
answers were 304 Not Modified, and the rate-limit points spent (GitHub counts every answer but a
304 made with an Authorization header):

- first: nothing stored yet;
- unchanged, same worker: the worker's in-memory ETag cache;
- unchanged, new worker: a separate Python process, a new connector instance that has never
  seen the connection, with the answers loaded from the connection's ConditionalCache. With
  DATABASE_URL set that is the engine's Postgres store (migrated, a throwaway account and
  connection); otherwise a JSON file standing in for it.

    python bench/github_conditional.py [--repos 200]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Collection, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from connectors.base import ConditionalCache, EndpointPolicy, StoredAnswer
from connectors.github import GithubConnector
from connectors.github.etags import forget_etag_caches
from connectors.github.kit import github_server, seed_estate
from connectors.github.kit.estate import REPOS
from engine.conditional_cache import PostgresConditionalCache
from engine.db import session_factory
from engine.migrate import upgrade
from engine.models import Account, Connection, ConnectionStatus
from engine.settings import Settings

ROOT = Path(__file__).parents[1]


class FileConditionalCache:
    """The ConditionalCache protocol over a JSON file (when no database is at hand)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> dict[str, Any]:
        return json.loads(self.path.read_text()) if self.path.exists() else {}

    def load(self, scope: str) -> dict[str, StoredAnswer]:
        data = self._read()
        return {url: StoredAnswer(a["etag"], a["headers"], base64.b64decode(a["body"]))
                for url, a in data.get(scope, {}).items()}

    def save(self, scope: str, changed: Mapping[str, StoredAnswer],
             dropped: Collection[str]) -> None:
        answers = {k: v for k, v in self._read().get(scope, {}).items() if k not in dropped}
        answers.update({url: {"etag": a.etag, "headers": dict(a.headers),
                              "body": base64.b64encode(a.body).decode()}
                        for url, a in changed.items()})
        self.path.write_text(json.dumps({scope: answers}))


def open_store(spec: str) -> ConditionalCache:
    """`postgres:<connection id>` or `file:<path>`."""
    kind, _, where = spec.partition(":")
    if kind == "postgres":
        return PostgresConditionalCache(session_factory(Settings()), where)
    return FileConditionalCache(Path(where))


def make_store_spec(workdir: Path) -> str:
    """A store for the bench's connection: Postgres when DATABASE_URL is set."""
    if not os.environ.get("DATABASE_URL"):
        return f"file:{workdir / 'conditional-cache.json'}"
    settings = Settings()
    upgrade(settings)
    with session_factory(settings)() as s, s.begin():
        account = Account(id=f"bench-{os.getpid()}")
        s.add(account)
        s.flush()
        conn = Connection(account_id=account.id, integration_id="github",
                          status=ConnectionStatus.ACTIVE)
        s.add(conn)
        s.flush()
        return f"postgres:{conn.id}"


def sync(raw: dict[str, Any], config: dict[str, Any], store: str) -> None:
    conn = GithubConnector(GithubConnector.parse_credentials(raw), config,
                           endpoints=EndpointPolicy(allow_custom=True),
                           conditional_cache=open_store(store))
    for _ in conn.run_checks():
        pass


def child() -> None:
    """The new worker: `--child STORE` with the credentials and config as JSON on stdin."""
    given = json.loads(sys.stdin.read())
    sync(given["credentials"], given["config"], sys.argv[2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repos", type=int, default=200)
    args = parser.parse_args()
    repos = tuple(replace(REPOS[i % len(REPOS)], name=f"{REPOS[i % len(REPOS)].name}-{i}")
                  for i in range(args.repos))
    table = Table(title=f"GitHub sync of {len(repos)} repositories, page size 100")
    for column in ("sync", "requests", "304 answers", "rate-limit points", "seconds"):
        table.add_column(column, justify="right" if column != "sync" else "left")
    forget_etag_caches()
    with tempfile.TemporaryDirectory() as workdir, github_server(page_size=100) as server:
        store = make_store_spec(Path(workdir))
        estate = seed_estate(server.base_url, repos=repos)
        server.serve(estate)
        runs = (("first", False), ("unchanged, same worker", False),
                ("unchanged, new worker process", True))
        for label, new_process in runs:
            sent, not_modified, points = (len(server.requests), server.not_modified,
                                          server.points)
            started = time.perf_counter()
            if new_process:
                subprocess.run([sys.executable, __file__, "--child", store],
                               input=json.dumps({"credentials": estate.credentials(),
                                                 "config": estate.config()}),
                               text=True, check=True, cwd=ROOT)
            else:
                sync(estate.credentials(), estate.config(), store)
            table.add_row(label, str(len(server.requests) - sent),
                          str(server.not_modified - not_modified), str(server.points - points),
                          f"{time.perf_counter() - started:.1f}")
        table.caption = f"store: {store.split(':', 1)[0]}"
    Console().print(table)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child()
    else:
        main()
