"""A console redirect carries its message whole, whatever characters it holds."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from starlette.requests import Request

from warden.web.console import _back

_REQUEST = Request({"type": "http", "method": "POST", "path": "/", "headers": []})


def test_an_error_with_ampersand_and_hash_comes_back_whole() -> None:
    error = "runbook a&b: refused #2, see docs?x=1"
    location = _back(_REQUEST, "/console/versions", error=error).headers["location"]
    parts = urlsplit(location)
    assert parts.path == "/console/versions"
    assert parts.fragment == ""
    assert parse_qs(parts.query) == {"error": [error]}


def test_a_notice_is_sent_as_done_and_nothing_as_no_query() -> None:
    done = _back(_REQUEST, "/console/controls", message="recorded warden.kill_switch.engaged")
    assert parse_qs(urlsplit(done.headers["location"]).query) == {
        "done": ["recorded warden.kill_switch.engaged"]
    }
    assert _back(_REQUEST, "/console").headers["location"] == "/console"
