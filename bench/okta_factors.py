"""Every active user's factors in a large Okta org, read within its rate limit.

Grows the Okta kit's acme org to --users ACTIVE users (each with one or two factors), serves it
from the local Okta server with a per-endpoint rate limit (--limit requests per --window seconds,
with honest X-Rate-Limit-* headers and a 429 past the limit), and runs the connector's factor
checks through the real okta SDK. Prints the requests per endpoint, the 429s drawn, the elapsed
time, and that time scaled to Okta's one-minute windows. No asserts.

    python bench/okta_factors.py [--users 5000] [--limit 600] [--window 6]
"""

from __future__ import annotations

import argparse
import os
import time
from collections import Counter

os.environ.setdefault("OKTA_TESTING_TESTINGDISABLEHTTPSCHECK", "true")

from connectors.base import EndpointPolicy  # noqa: E402 - after the SDK's testing switch
from connectors.okta import OktaConnector, factors  # noqa: E402
from connectors.okta.kit import okta_server  # noqa: E402
from connectors.okta.kit.factors import factors_json  # noqa: E402
from connectors.okta.kit.shapes import okta_id  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--limit", type=int, default=600, help="requests per window per endpoint")
    parser.add_argument("--window", type=float, default=6.0,
                        help="seconds a window lasts (Okta: 60; shorter runs the bench faster)")
    args = parser.parse_args()
    with okta_server(page_size=200, rate_limit=args.limit, rate_window=args.window) as server:
        estate = server.estate
        template = next(u for u in estate.users if u["profile"]["login"].startswith("bob."))
        kinds = ("alice.nguyen", "bob.martinez", "carol.smith", "frank.li")  # factor mixes
        for n in range(args.users - sum(u["status"] == "ACTIVE" for u in estate.users)):
            login = f"user{n:05d}@acme.example.com"
            uid = okta_id("00u", login)
            estate.users.append({**template, "id": uid, "profile": {
                **template["profile"], "login": login, "email": login}})
            like = kinds[n % len(kinds)] + "@acme.example.com"
            estate.factors[uid] = factors_json(uid, like, estate.org_url, estate.now)
        active = sum(u["status"] == "ACTIVE" for u in estate.users)
        okta = OktaConnector(OktaConnector.parse_credentials(estate.credentials()), {},
                             endpoints=EndpointPolicy(allow_custom=True))
        started = time.perf_counter()
        outcomes = list(okta.run_checks([factors.mfa_enrolled,
                                         factors.phishing_resistant_mfa]))
        elapsed = time.perf_counter() - started
        seen = list(server.seen)
    statuses = Counter(s.status for s in seen)
    endpoints = Counter("/api/v1/users/{id}/factors" if s.path.endswith("/factors")
                        else s.path for s in seen)
    judged = Counter(r.status.value for o in outcomes for r in o.results)
    errors = [e for o in outcomes for e in o.errors]
    factor_reads = endpoints["/api/v1/users/{id}/factors"]
    windows = -(-factor_reads // args.limit)
    print(f"active users            {active}")
    print(f"rate limit              {args.limit} requests / {args.window:g} s per endpoint")
    for path, count in sorted(endpoints.items()):
        print(f"requests {path:<30} {count}")
    print(f"answers                 {dict(sorted(statuses.items()))}  (429s drawn: "
          f"{statuses.get(429, 0)})")
    print(f"results                 {dict(sorted(judged.items()))}  errors: {len(errors)}")
    print(f"elapsed                 {elapsed:.1f} s  (at least {windows} windows of factor "
          f"reads: {windows * args.window:g} s)")
    print(f"at Okta's 60 s windows  about {elapsed * 60 / args.window / 60:.1f} min")


if __name__ == "__main__":
    main()
