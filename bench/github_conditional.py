"""GitHub conditional requests: requests and rate-limit points of a first and an unchanged sync.

Syncs an emulated organization (the kit's fourteen repositories, repeated to --repos) through
the real PyGithub against the kit's local GitHub server, twice, and prints what each sync sent,
how many answers were 304 Not Modified, and the rate-limit points spent (GitHub counts every
answer but a 304 made with an Authorization header).

    python bench/github_conditional.py [--repos 200]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

from rich.console import Console
from rich.table import Table

from connectors.base import EndpointPolicy
from connectors.github import GithubConnector
from connectors.github.etags import forget_etag_caches
from connectors.github.kit import github_server, seed_estate
from connectors.github.kit.estate import REPOS


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
    with github_server(page_size=100) as server:
        estate = seed_estate(server.base_url, repos=repos)
        server.serve(estate)
        for label in ("first", "unchanged"):
            sent, not_modified, points = (len(server.requests), server.not_modified,
                                          server.points)
            conn = GithubConnector(GithubConnector.parse_credentials(estate.credentials()),
                                   estate.config(), endpoints=EndpointPolicy(allow_custom=True))
            started = time.perf_counter()
            for _ in conn.run_checks():
                pass
            table.add_row(label, str(len(server.requests) - sent),
                          str(server.not_modified - not_modified), str(server.points - points),
                          f"{time.perf_counter() - started:.1f}")
    Console().print(table)


if __name__ == "__main__":
    main()
