"""A secret echoed by a server is masked in every form it may come in (errors.redact):
encoded, escaped, cut, upper-cased, split over two lines, inside a cursor."""

from __future__ import annotations

import base64
import html
import json
import re
from urllib.parse import quote

import pytest

from tap_mokapen import errors
from tap_mokapen.paging import open_list

PLAIN = "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8S9t0"
PUNCTUATED = "p@ss~w/rd!\"<é>&'%+ü{}[]\\x41ß-=.,;:?#~é"


def forms(secret: str) -> dict[str, str]:
    php = quote(secret, safe="").replace("~", "%7E")
    return {
        "as it is": secret,
        "PHP-urlencoded": php,
        "%xx in lower case": re.sub(r"%[0-9A-F]{2}", lambda m: m[0].lower(), php),
        "URL-encoded twice": quote(quote(secret, safe=""), safe=""),
        "HTML-escaped": html.escape(secret),
        "JSON with \\u00E9": json.dumps(secret).replace("\\u00e9", "\\u00E9")[1:-1],
        "JSON with \\/": json.dumps(secret).replace("/", "\\/")[1:-1],
        "repr()": repr(secret),
        "HTML numeric entities": "".join(f"&#{ord(c)};" for c in secret),
        "HTML hex entities": "".join(f"&#x{ord(c):X};" for c in secret),
        "base64 of it alone": base64.b64encode(secret.encode()).decode(),
        "upper-cased": secret.upper(),
        "its first 37 characters": secret[:37],
        "split over two lines": f"{secret[:20]}\n{secret[20:]}",
    }


@pytest.fixture(autouse=True)
def known_secrets():
    errors.register_secret(PLAIN, client_id="sandbox-client")
    errors.register_secret(PUNCTUATED)


@pytest.mark.parametrize("secret", [PLAIN, PUNCTUATED], ids=["letters and digits", "punctuated"])
@pytest.mark.parametrize("form", list(forms(PLAIN)))
def test_an_echoed_secret_is_masked_in_every_form(secret, form):
    echoed = forms(secret)[form]
    message = f'400 from POST /oauth/token: {{"message": "Invalid client: {echoed} (check it)"}}'
    shown = errors.redact(message)
    assert not errors.holds_secret(shown), shown
    assert "400 from POST /oauth/token" in shown  # the rest of the message is kept
    # No run of 8 characters of the secret survives, in any case, once decoded.
    assert not any(secret[i : i + 8].casefold() in shown.casefold() for i in range(len(secret) - 7))


def test_text_without_a_secret_is_left_as_it_is():
    message = "422 from GET /api/v1/849/contacts: The per page may not be greater than 250."
    assert errors.redact(message) == message


def test_a_cursor_holding_a_secret_is_neither_kept_nor_quoted():
    paginator = open_list({"shape": "cursor", "cursor": f"abc{PLAIN}def"})
    assert paginator.position() == {"shape": "cursor"}
    assert PLAIN[:8] not in paginator.describe_position()
