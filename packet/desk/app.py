"""The desk's web application (Flask): sign-in, the case list, the review queue, a case page, an item
page with page images and decision forms, and sealing for the roles allowed to.

Every route but the sign-in page needs a signed-in user; every form carries the session's CSRF token;
pages and images are looked up from the case id, a document's content hash and a page number, never
from a path the browser sends. Responses are never cached and never framed.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
from functools import wraps
from pathlib import Path

from flask import Flask, Response, abort, g, redirect, render_template, request, url_for

from packet.config import Config
from packet.desk import accounts, cases, decisions
from packet.desk.sessions import FailedLogins, SessionStore, csrf_ok
from packet.errors import GateFailed, PacketError, UsageError
from packet.log import log
from packet.pipeline.seal import seal_case
from packet.records import audit

COOKIE = "desk_session"
PUBLIC_ENDPOINTS = frozenset({"login", "login_post"})
STYLE = (Path(__file__).parent / "templates" / "desk.css").read_text(encoding="utf-8")
STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
CSP = (f"default-src 'none'; img-src 'self'; style-src 'sha256-{STYLE_HASH}'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
STATE_NAMES = {"drafting": "drafting", "needs_review": "needs review", "ready": "ready to seal",
               "sealed": "sealed", "supplement_open": "supplement open"}


def _client_address() -> str:
    return request.remote_addr or ""


def _trusted_proxy(config: Config, address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for entry in config.web.trusted_proxies:
        try:
            if ip in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def create_app(config: Config, *, clock=None) -> Flask:
    app = Flask(__name__, template_folder="templates", static_folder=None)
    app.config.update(MAX_CONTENT_LENGTH=64 * 1024, TEMPLATES_AUTO_RELOAD=False)
    store = SessionStore(config.web.idle_minutes * 60, **({"clock": clock} if clock else {}))
    failures = FailedLogins(config.web.max_failed_logins, **({"clock": clock} if clock else {}))
    app.extensions["desk"] = {"sessions": store, "failures": failures, "config": config}

    @app.context_processor
    def _globals():
        return {"user": g.get("user"), "csrf": g.session.csrf if g.get("session") else "", "style": STYLE,
                "state_names": STATE_NAMES, "now": dt.datetime.now(config.calendar.tz)}

    @app.before_request
    def _sign_in_check():
        g.user, g.session = None, None
        if config.web.auth == "proxy":
            name = request.headers.get("Remote-User", "")
            if name and _trusted_proxy(config, _client_address()):
                g.user = accounts.proxy_user(config, name)
                if g.user is not None:
                    g.session = store.get(request.cookies.get(COOKIE)) or None
                    if g.session is None or g.session.user != g.user:
                        token = store.create(g.user)
                        g.new_token = token
                        g.session = store.get(token)
        else:
            session = store.get(request.cookies.get(COOKIE))
            if session is not None:
                g.user, g.session = session.user, session
        if request.endpoint in PUBLIC_ENDPOINTS:
            return None
        if g.user is None:
            if request.method == "GET":
                return redirect(url_for("login"))
            abort(401)
        if request.method == "POST" and not csrf_ok(g.session, request.form.get("csrf")):
            abort(403)
        return None

    @app.after_request
    def _headers(response: Response) -> Response:
        token = g.get("new_token")
        if token:
            response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", secure=config.web.secure_cookies)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
        response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
        # The service log names the route, never the case, the document or the user.
        log("desk_request", level="debug", method=request.method.lower(), view=request.endpoint or "none",
            status=response.status_code)
        return response

    def needs(permission: str):
        def wrap(view):
            @wraps(view)
            def inner(*args, **kwargs):
                if not g.user.may(permission):
                    abort(403)
                return view(*args, **kwargs)
            return inner
        return wrap

    @app.get("/login")
    def login():
        if config.web.auth == "proxy":
            return render_template("login.html", proxy=True, error=None), 401
        return render_template("login.html", proxy=False, error=None)

    @app.post("/login")
    def login_post():
        if config.web.auth == "proxy":
            abort(403)
        name = request.form.get("name", "")[:64]
        password = request.form.get("password", "")[:1024]
        address = _client_address()
        if failures.blocked(name, address):
            audit.record(config, "desk_login_refused", actor=name if accounts.NAME_RE.fullmatch(name) else "?",
                         why="too_many_failures")
            return render_template("login.html", proxy=False,
                                   error="Too many failed sign-ins. Wait 15 minutes or ask a supervisor."), 429
        user = accounts.authenticate(config, name, password)
        if user is None:
            failures.failed(name, address)
            audit.record(config, "desk_login_failed", actor=name if accounts.NAME_RE.fullmatch(name) else "?")
            return render_template("login.html", proxy=False, error="The name or the password is wrong."), 401
        failures.succeeded(name, address)
        token = store.create(user)
        audit.record(config, "desk_login", actor=user.name, role=user.role)
        response = redirect(url_for("queue"))
        response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", secure=config.web.secure_cookies)
        return response

    @app.post("/logout")
    def logout():
        store.end(request.cookies.get(COOKIE))
        audit.record(config, "desk_logout", actor=g.user.name)
        response = redirect(url_for("login"))
        response.delete_cookie(COOKIE, httponly=True, samesite="Strict", secure=config.web.secure_cookies)
        return response

    @app.get("/")
    def case_list():
        statuses = cases.all_cases(config)
        state = request.args.get("state", "")
        if state in STATE_NAMES:
            statuses = [s for s in statuses if s.state == state]
        sort = request.args.get("sort", "due")
        if sort == "case":
            statuses = sorted(statuses, key=lambda s: s.case_id)
        return render_template("cases.html", cases=statuses, state=state, sort=sort, results=None, query="")

    @app.post("/search")
    def search():
        # A search can name a member or a title: it is sent in the body, never in the address.
        query = " ".join(request.form.get("q", "").split())[:100].lower()
        results = []
        if query:
            for status in cases.all_cases(config):
                detail = cases.case_detail(config, status.case_id)
                hits = [d for d in (detail.documents if detail else ()) if query in d.title.lower()]
                if query in status.case_id.lower() or hits:
                    results.append((status, hits))
        return render_template("cases.html", cases=[], state="", sort="due", results=results, query=query)

    @app.get("/queue")
    def queue():
        return render_template("queue.html", items=cases.review_queue(config))

    def _detail(case_id: str) -> cases.CaseDetail:
        detail = cases.case_detail(config, case_id)
        if detail is None:
            abort(404)
        return detail

    @app.get("/case/<case_id>")
    def case_page(case_id: str):
        detail = _detail(case_id)
        history = [e for e in audit.iter_entries(config)
                   if e.get("case") == case_id and str(e.get("event", "")).startswith(("override", "sealed"))]
        return render_template("case.html", detail=detail, case_id=case_id, history=history[-50:], message=None)

    @app.get("/case/<case_id>/doc/<key>")
    def item_page(case_id: str, key: str):
        detail = _detail(case_id)
        document = cases.find_document(detail, key)
        if document is None:
            abort(404)
        items = [i for i in detail.items if i.document is not None and i.document.key == key]
        return render_template("item.html", detail=detail, case_id=case_id, doc=document, items=items,
                               categories=cases.CATEGORY_NAMES, message=None, error=None)

    @app.get("/case/<case_id>/doc/<key>/page/<int:page>.png")
    def page_png(case_id: str, key: str, page: int):
        detail = _detail(case_id)
        document = cases.find_document(detail, key)
        if document is None:
            abort(404)
        image = cases.page_image(config, case_id, document, page, thumb=request.args.get("size") != "full")
        if image is None:
            abort(404)
        audit_view = request.args.get("size") == "full"
        if audit_view:
            audit.record(config, "desk_page_viewed", case=case_id, doc=document.sha256, actor=g.user.name, page=page)
        return Response(image, mimetype="image/png")

    @app.post("/case/<case_id>/doc/<key>/decide")
    @needs("decide")
    def decide(case_id: str, key: str):
        detail = _detail(case_id)
        document = cases.find_document(detail, key)
        if document is None:
            abort(404)
        field = request.form.get("field", "")
        remove = request.form.get("remove") == "1"
        value = None if remove else request.form.get("value", "")
        try:
            decisions.apply(config, case_id, document.source, document.sha256,
                            decisions.Decision(field, value, request.form.get("pages") or None),
                            actor=g.user.name, document_pages=document.original_pages)
        except UsageError as exc:
            items = [i for i in detail.items if i.document is not None and i.document.key == key]
            return render_template("item.html", detail=detail, case_id=case_id, doc=document, items=items,
                                   categories=cases.CATEGORY_NAMES, message=None, error=str(exc)), 400
        return redirect(url_for("item_page", case_id=case_id, key=key, done=1))

    @app.post("/case/<case_id>/seal")
    @needs("seal")
    def seal(case_id: str):
        detail = _detail(case_id)
        reason = " ".join(request.form.get("override", "").split()) or None
        if reason is not None and not g.user.may("seal_override"):
            abort(403)
        try:
            submission = seal_case(config, case_id, override_reason=reason, actor=g.user.name)
        except GateFailed as exc:
            return render_template("case.html", detail=detail, case_id=case_id, history=[],
                                   message="Not sealed: " + "; ".join(exc.items)), 409
        except PacketError as exc:
            return render_template("case.html", detail=detail, case_id=case_id, history=[],
                                   message=f"Not sealed: {exc}"), 409
        return render_template("case.html", detail=_detail(case_id), case_id=case_id, history=[],
                               message=f"Sealed: {submission.name}")

    @app.errorhandler(401)
    @app.errorhandler(403)
    @app.errorhandler(404)
    @app.errorhandler(405)
    @app.errorhandler(413)
    @app.errorhandler(429)
    def _error(exc):
        code = getattr(exc, "code", 500)
        return render_template("error.html", code=code, name=getattr(exc, "name", "Error")), code

    return app

