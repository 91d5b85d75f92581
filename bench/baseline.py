"""The raw baseline: a plain requests loop over the same pages, one Singer RECORD per record.

No SDK, no schema work: parse each page with orjson, write each record as a RECORD
line to stdout. It is what the tap's own cost is compared with.
"""

from __future__ import annotations

import sys

import orjson
import requests


def main(base_url: str, client_id: str, client_secret: str, org: str, page_size: int) -> None:
    session = requests.Session()
    token = session.post(
        f"{base_url}/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
            "scope": "contacts.read",
            "organization_id": org,
        },
        timeout=60,
    ).json()["access_token"]
    session.headers["Authorization"] = f"Bearer {token}"
    out = sys.stdout.buffer
    page = 1
    while True:
        response = session.get(
            f"{base_url}/api/v1/{org}/contacts",
            params={"page": page, "per_page": page_size},
            timeout=120,
        )
        response.raise_for_status()
        body = orjson.loads(response.content)
        for record in body["data"]:
            out.write(orjson.dumps({"type": "RECORD", "stream": "contacts", "record": record}))
            out.write(b"\n")
        if not body.get("next_page_url"):
            break
        page += 1
    out.flush()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
