"""The desk's doors: sign-in on every route, roles, CSRF, sessions, proxy trust, no PHI in URLs."""

from __future__ import annotations

import dataclasses
import io
import json
import re

import pytest

from deskkit import CASE_ID, OTHER_PATIENT, PASSWORD, desk_case
from helpers import MEMBER_DOB, MEMBER_ID, MEMBER_NAME


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return desk_case(tmp_path_factory.mktemp("desk"))


@pytest.fixture
def app(built):
    from packet.desk.app import create_app

    return create_app(built[0])


def sign_in(client, name):
    response = client.post("/login", data={"name": name, "password": PASSWORD})
    assert response.status_code == 302, response.data
    return client


def csrf_of(client) -> str:
    page = client.get("/queue").data.decode()
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def doc_key(client, fragment: str) -> str:
    page = client.get(f"/case/{CASE_ID}").data.decode()
    for row in page.split("<tr>"):
        if fragment in row and "/doc/" in row:
            return re.search(r"/doc/([0-9a-f]{12})", row).group(1)
    raise AssertionError(f"{fragment} not on the case page")


def example_url(rule) -> str:
    values = {"case_id": CASE_ID, "key": "0" * 12, "page": 1}
    return rule.build({k: values[k] for k in rule.arguments}, append_unknown=False)[1]


def test_every_route_refuses_an_anonymous_request(app):
    client = app.test_client()
    rules = [r for r in app.url_map.iter_rules()]
    assert len(rules) >= 8, "the routes come from the app itself"
    public = {"login", "login_post"}
    for rule in rules:
        url = example_url(rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(url, method=method, data={"csrf": "x", "field": "exclude", "value": "x"})
            if rule.endpoint in public:
                continue
            assert response.status_code in (302, 401), (method, rule.rule, response.status_code)
            if response.status_code == 302:
                assert response.headers["Location"].endswith("/login")
            assert MEMBER_NAME.encode() not in response.data


def test_no_static_route_and_no_path_chosen_by_the_browser(app):
    assert not any("path" in rule.rule for rule in app.url_map.iter_rules())
    client = sign_in(app.test_client(), "audrey")
    key = doc_key(client, "Lab panel")
    for url in (f"/case/..%2F..%2Fetc/doc/{key}/page/1.png", f"/case/{CASE_ID}/doc/..%2F..%2Fpasswd/page/1.png",
                f"/case/{CASE_ID}%2F..%2F../doc/{key}/page/1.png", f"/case/{CASE_ID}/doc/{key}/page/0.png",
                f"/case/{CASE_ID}/doc/{key}/page/99.png", "/case/../../etc/passwd", f"/case/{CASE_ID}/doc/{'f' * 12}",
                "/case/%2e%2e/doc/x", "/static/desk.css"):
        assert client.get(url).status_code == 404, url
    assert client.get(f"/case/{CASE_ID}/doc/{key}/page/1.png").data.startswith(b"\x89PNG")


def test_a_symlinked_case_folder_outside_the_inbox_is_not_followed(built, app, tmp_path):
    config, _ = built
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "draft").mkdir(parents=True)
    link = config.paths.outbox / "IMR-2026-999999"
    link.symlink_to(elsewhere, target_is_directory=True)
    try:
        client = sign_in(app.test_client(), "audrey")
        response = client.get("/case/IMR-2026-999999")
        assert response.status_code == 404
    finally:
        link.unlink()


def test_roles(built, app):
    clerk = sign_in(app.test_client(), "clara")
    token = csrf_of(clerk)
    assert clerk.post(f"/case/{CASE_ID}/seal", data={"csrf": token}).status_code == 403
    assert clerk.post(f"/case/{CASE_ID}/seal", data={"csrf": token, "override": "urgent"}).status_code == 403
    auditor = sign_in(app.test_client(), "audrey")
    token = csrf_of(auditor)
    key = doc_key(auditor, "misc scan 7")
    assert auditor.get(f"/case/{CASE_ID}/doc/{key}").status_code == 200
    assert b'id="decide-category"' not in auditor.get(f"/case/{CASE_ID}/doc/{key}").data
    response = auditor.post(f"/case/{CASE_ID}/doc/{key}/decide",
                            data={"csrf": token, "field": "category", "value": "medical_records"})
    assert response.status_code == 403
    assert auditor.post(f"/case/{CASE_ID}/seal", data={"csrf": token}).status_code == 403
    assert not (built[1] / "overrides.toml").exists(), "an auditor changed nothing"


def test_a_form_without_its_csrf_token_is_refused(built, app):
    clerk = sign_in(app.test_client(), "clara")
    key = doc_key(clerk, "misc scan 7")
    for data in ({}, {"csrf": ""}, {"csrf": "forged"}):
        response = clerk.post(f"/case/{CASE_ID}/doc/{key}/decide",
                              data={**data, "field": "category", "value": "medical_records"})
        assert response.status_code == 403
    other = sign_in(app.test_client(), "sam")
    response = clerk.post(f"/case/{CASE_ID}/doc/{key}/decide",
                          data={"csrf": csrf_of(other), "field": "category", "value": "medical_records"})
    assert response.status_code == 403, "another session's token does not count"
    assert not (built[1] / "overrides.toml").exists()


def test_a_session_expires_after_idle_time(built):
    from packet.desk.app import create_app

    now = [1000.0]
    app = create_app(built[0], clock=lambda: now[0])
    client = sign_in(app.test_client(), "clara")
    assert client.get("/queue").status_code == 200
    now[0] += built[0].web.idle_minutes * 60 - 5
    assert client.get("/queue").status_code == 200, "use keeps it alive"
    now[0] += built[0].web.idle_minutes * 60 + 1
    response = client.get("/queue")
    assert response.status_code == 302 and response.headers["Location"].endswith("/login")


def test_failed_sign_ins_are_limited_and_audited(built, app):
    from packet.records import audit

    client = app.test_client()
    for _ in range(built[0].web.max_failed_logins):
        assert client.post("/login", data={"name": "clara", "password": "wrong"}).status_code == 401
    assert client.post("/login", data={"name": "clara", "password": PASSWORD}).status_code == 429
    events = [e["event"] for e in audit.iter_entries(built[0]) if e.get("actor") == "clara"]
    assert events.count("desk_login_failed") >= built[0].web.max_failed_logins
    assert "desk_login_refused" in events


def test_proxy_header_is_believed_only_from_trusted_addresses(built):
    from packet.desk.app import create_app

    web = dataclasses.replace(built[0].web, auth="proxy", trusted_proxies=("10.9.9.9",),
                              proxy_roles=("carol=clerk",))
    app = create_app(dataclasses.replace(built[0], web=web))
    client = app.test_client()
    response = client.get("/queue", headers={"Remote-User": "carol"})
    assert response.status_code == 302, "ignored from 127.0.0.1"
    response = client.get("/queue", headers={"Remote-User": "carol"}, environ_base={"REMOTE_ADDR": "10.9.9.8"})
    assert response.status_code == 302
    response = client.get("/queue", headers={"Remote-User": "carol"}, environ_base={"REMOTE_ADDR": "10.9.9.9"})
    assert response.status_code == 200 and b"carol (clerk)" in response.data
    response = client.get("/queue", headers={"Remote-User": "mallory"}, environ_base={"REMOTE_ADDR": "10.9.9.9"})
    assert response.status_code == 302, "an unknown name gets nothing"
    assert client.post("/login", data={"name": "clara", "password": PASSWORD}).status_code == 403


def test_headers_and_cookies(app):
    client = app.test_client()
    response = client.post("/login", data={"name": "clara", "password": PASSWORD})
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    page = client.get("/queue")
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert "script-src" not in page.headers["Content-Security-Policy"] or "'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["Cache-Control"] == "no-store"


def test_secure_cookie_behind_tls(built):
    from packet.desk.app import create_app

    app = create_app(dataclasses.replace(built[0], web=dataclasses.replace(built[0].web, secure_cookies=True)))
    response = app.test_client().post("/login", data={"name": "clara", "password": PASSWORD})
    assert "Secure" in response.headers["Set-Cookie"]


def test_no_phi_in_any_url_or_in_the_service_log(built, app):
    from packet import log as service_log

    stream = io.StringIO()
    service_log.set_stream(stream)
    try:
        client = sign_in(app.test_client(), "audrey")
        seen, todo, urls = set(), ["/", "/queue", f"/case/{CASE_ID}"], []
        while todo:
            url = todo.pop()
            if url in seen or len(seen) > 60:
                continue
            seen.add(url)
            page = client.get(url)
            assert page.status_code == 200, url
            if page.mimetype != "text/html":
                continue
            for attribute, found in re.findall(r'(href|src|action)="([^"]+)"', page.data.decode()):
                urls.append(found)
                if attribute != "action" and found.startswith("/"):
                    todo.append(found)
        client.post("/search", data={"csrf": csrf_of(client), "q": MEMBER_NAME.split()[0]})
    finally:
        service_log.set_stream(None)
    phi = [MEMBER_NAME, MEMBER_ID, str(MEMBER_DOB), "Lab panel", "misc scan", "Grievance", OTHER_PATIENT, "CHEN"]
    for url in urls:
        for text in phi:
            assert text.lower() not in url.lower(), (text, url)
    log_text = stream.getvalue()
    assert log_text.count("desk_request") > 3
    for text in phi + [CASE_ID]:
        assert text.lower() not in log_text.lower(), text
    for line in log_text.splitlines():
        json.loads(line)


def test_page_pictures_are_drawn_under_the_memory_and_a_time_limit(tmp_path, monkeypatch):
    """pdftoppm reads the clerks' pages in the desk's own process: under the workers' memory limit
    (set by a shell, the desk being threaded) and killed past its time."""
    import os
    import stat
    import time

    from packet.desk import cases

    config, _ = desk_case(tmp_path / "desk")
    config = dataclasses.replace(config, limits=dataclasses.replace(config.limits, worker_memory_mib=777))
    fake = tmp_path / "bin" / "pdftoppm"
    fake.parent.mkdir()
    # The fake writes its address-space limit where the picture goes (its last argument).
    fake.write_text('#!/bin/sh\nfor last; do :; done\nif [ -e "$SLOW" ]; then exec sleep 60; fi\n'
                    'printf "\\211PNG %s" "$(ulimit -v)" > "$last.png"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("SLOW", str(tmp_path / "slow"))
    document = next(d for d in cases.case_detail(config, CASE_ID).documents if d.packet_pages)
    assert cases.page_image(config, CASE_ID, document, 1, thumb=False) == b"\x89PNG " + str(777 * 1024).encode()
    (tmp_path / "slow").touch()
    monkeypatch.setattr(cases, "PICTURE_SECONDS", 1)
    began = time.monotonic()
    assert cases.page_image(config, CASE_ID, document, 1, thumb=True) is None
    assert time.monotonic() - began < 20
