"""Load on the review desk: N users browsing and deciding at once while the watcher builds cases.

`python -m bench.desk_load [--users 20] [--seconds 60] [--cases 4]` (all on 127.0.0.1). Each user
signs in, then loops over the case list, the queue, a case page, a document page and one of its
page images, and every few rounds records a decision (a document title) through the desk's form.
Prints the request count, errors, p50/p95/max page time, and whether every decision reached both
overrides.toml and the audit log with its user; exits 1 on any error or lost decision.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

PASSWORD = "load test password 1"


class Client:
    def __init__(self, port: int):
        self.port = port
        self.cookie = ""
        self.times: list[float] = []
        self.errors: list[str] = []

    def request(self, method: str, path: str, form: dict | None = None) -> tuple[int, str, dict]:
        body = urllib.parse.urlencode(form).encode() if form is not None else None
        headers = {"Cookie": self.cookie} if self.cookie else {}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        start = time.perf_counter()
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        self.times.append(time.perf_counter() - start)
        cookie = response.getheader("Set-Cookie")
        if cookie:
            self.cookie = cookie.split(";", 1)[0]
        return response.status, data.decode("utf-8", "replace"), dict(response.getheaders())

    def expect(self, method: str, path: str, form: dict | None = None, ok=(200,)) -> str:
        status, text, _ = self.request(method, path, form)
        if status not in ok:
            self.errors.append(f"{method} {path.split('/doc/')[0]}: {status}")
        return text


def user_loop(client: Client, name: str, stop_at: float, decisions: list) -> None:
    client.expect("POST", "/login", {"name": name, "password": PASSWORD}, ok=(302,))
    round_number = 0
    while time.monotonic() < stop_at:
        round_number += 1
        listing = client.expect("GET", "/")
        client.expect("GET", "/queue")
        cases = sorted(set(re.findall(r'href="/case/([A-Za-z0-9._-]+)"', listing))) or ["none"]
        case_id = random.choice(cases)
        page = client.expect("GET", f"/case/{case_id}", ok=(200, 404))
        keys = re.findall(r"/doc/([0-9a-f]{12})", page)
        if not keys:
            time.sleep(0.2)  # no draft yet: the watcher is still building
            continue
        key = random.choice(keys)
        item = client.expect("GET", f"/case/{case_id}/doc/{key}")
        client.expect("GET", f"/case/{case_id}/doc/{key}/page/1.png", ok=(200, 404))
        token = re.search(r'name="csrf" value="([^"]+)"', item)
        if token and round_number % 3 == 0:
            title = f"Reviewed by {name} round {round_number}"
            status, _, _ = client.request("POST", f"/case/{case_id}/doc/{key}/decide",
                                          {"csrf": token.group(1), "field": "title", "value": title})
            if status == 302:
                decisions.append((name, case_id, key, title))
            else:
                client.errors.append(f"decide: {status}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--cases", type=int, default=4)
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temp folder, removed)")
    args = parser.parse_args(argv)
    work = args.keep or Path(tempfile.mkdtemp(prefix="desk-load-"))
    try:
        return run(args, work)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, root: Path) -> int:
    from packet.config import load_config
    from packet.demo import write_demo
    from packet.desk import accounts
    from packet.desk.serve import make_server, run_until_closed
    from packet.records import audit

    root.mkdir(parents=True, exist_ok=True)
    flags = {k: str(root / k) for k in ("inbox", "outbox", "archive", "state")}
    config = load_config(None, flags=flags, environ={})
    for _ in range(args.cases):
        write_demo(config)
    config_file = root / "imr.toml"
    config_file.write_text("[paths]\n" + "".join(f'{k} = "{v}"\n' for k, v in flags.items())
                           + "[watch]\nsettle_seconds = 0.5\ndebounce_seconds = 0.5\n")
    names = [f"user{i:02d}" for i in range(args.users)]
    for name in names:
        accounts.add_user(config, name, "clerk", PASSWORD)
    watcher = subprocess.Popen([sys.executable, "-m", "packet.cli", "watch", "--config", str(config_file)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=root)
    server = None
    try:
        server = make_server(config, listen="127.0.0.1:0")
        threading.Thread(target=run_until_closed, args=(server,), daemon=True).start()
        # The clock starts once every case has a first draft; from then on each decision makes the
        # watcher rebuild, so the users work while cases are being built.
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and not all(
                (config.paths.outbox / case.name / "draft" / "manifest.json").is_file()
                for case in config.paths.inbox.iterdir() if case.is_dir()):
            time.sleep(0.5)
        clients = [Client(server.effective_port) for _ in names]
        decisions: list = []
        stop_at = time.monotonic() + args.seconds
        threads = [threading.Thread(target=user_loop, args=(c, n, stop_at, decisions)) for c, n in zip(clients, names)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        if server is not None:
            time.sleep(1.0)  # waitress finishes writing the last answers before its trigger is closed
            server.close()
        watcher.terminate()  # before the caller removes its folders
        try:
            watcher.wait(timeout=60)
        except subprocess.TimeoutExpired:
            watcher.kill()
            watcher.wait()

    times = sorted(t for c in clients for t in c.times)
    errors = [e for c in clients for e in c.errors]
    recorded = {(e.get("actor"), e.get("case"), e.get("doc")) for e in audit.iter_entries(config)
                if e.get("event") in ("override_added", "override_changed") and e.get("decision") == "title"}
    lost_audit = [d for d in decisions if (d[0], d[1], d[2]) not in recorded]
    figures = {
        "users": args.users, "seconds": args.seconds, "requests": len(times), "errors": len(errors),
        "decisions": len(decisions), "decisions_not_audited": len(lost_audit),
        "p50_ms": round(statistics.median(times) * 1000, 1) if times else None,
        "p95_ms": round(times[int(len(times) * 0.95) - 1] * 1000, 1) if times else None,
        "max_ms": round(times[-1] * 1000, 1) if times else None,
    }
    print(json.dumps(figures))
    for error in sorted(set(errors))[:10]:
        print("error:", error)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 1 if errors or lost_audit or not decisions else 0


if __name__ == "__main__":
    sys.exit(main())
