"""`make dev`: runs the API (`chalice local`, dev stage) and the demo page together, and stops both.

- Checks both ports first: a busy one is one line naming it and the make variable
  to change (``make dev PORT=8010``), and exit code 1.
- Runs ``chalice local --no-autoreload``: chalice's reloader restarts the server
  whenever a file under the project changes, and ``analytics_data/`` is under the
  project, so every write cost the requests in flight. ``--reload`` (``make dev
  RELOAD=1``) restarts it instead when the app's own code or settings change.
- Serves ``client/`` (the demo page and the built client) from this process, so
  its errors (a 404, a port taken meanwhile) are printed, not lost.
- Prints the URLs once both answer. Ctrl-C (or SIGTERM) stops the API (which
  converts what is still pending first) and the demo server: both ports are free
  when this exits.

Standard library only: ``--check-ports`` runs before the virtualenv exists.
"""

from __future__ import annotations

import argparse
import html
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterable
from functools import partial
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLIENT_DIR = ROOT / "client"
# What --reload watches: the app's code and settings; never the data, .venv or node_modules.
WATCHED = ("app.py", "chalicelib/**/*.py", "chalicelib/**/*.json", ".chalice/config.json")
STARTUP_SECONDS = 60.0
STOP_SECONDS = 30.0


def port_in_use(host: str, port: int) -> bool:
    """Would a server fail to listen on ``host:port``? (Bound as chalice and
    http.server bind: SO_REUSEADDR, so a port in TIME_WAIT counts as free.)"""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror:
        return False  # the server will say what is wrong with the host
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def _free_port_near(host: str, port: int, avoid: Iterable[int]) -> int:
    avoid = set(avoid)
    for candidate in range(port + 10, min(port + 200, 65535), 10):
        if candidate not in avoid and not port_in_use(host, candidate):
            return candidate
    return port + 10


def busy_ports_message(host: str, ports: list[tuple[int, str, str]]) -> str | None:
    """One line for the ports (``(port, make variable, what)``) in use, or None."""
    busy = [(port, var, what) for port, var, what in ports if port_in_use(host, port)]
    if not busy:
        return None
    taken = [port for port, _, _ in ports]
    named = " and ".join(f"{port} ({what})" for port, _, what in busy)
    change = " ".join(f"{var}={_free_port_near(host, port, taken)}" for port, var, _ in busy)
    verb = "is" if len(busy) == 1 else "are"
    them = "it" if len(busy) == 1 else "them"
    plural = "s" if len(busy) > 1 else ""
    return (
        f"make dev: port{plural} {named} {verb} in use on {host}: "
        f"stop what holds {them}, or run make dev {change}"
    )


DEMO_PAGES = ("/demo/", "/demo/index.html")
# The demo page's placeholder for the API it posts to (client/demo/index.html).
API_META = b'<meta name="owned-analytics-api" content="">'


class DemoHandler(SimpleHTTPRequestHandler):
    """Serves ``client/`` without caching; prints requests that fail, and only those.
    The demo page is served with this run's API filled in, so it posts to the API that
    ``make dev PORT=…`` started without needing ``?api=``."""

    api_events_url = ""

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path in ("", "/"):
            self.send_response(HTTPStatus.FOUND)
            self.send_header("Location", "/demo/")
            self.end_headers()
            return
        if path in DEMO_PAGES and self.api_events_url:
            self._send_demo_page()
            return
        super().do_GET()

    def _send_demo_page(self) -> None:
        page = (Path(self.directory) / "demo" / "index.html").read_bytes()
        url = html.escape(self.api_events_url, quote=True).encode()
        body = page.replace(API_META, API_META.replace(b'content=""', b'content="' + url + b'"'))
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        status = int(code) if str(code).isdigit() else 0
        if status >= 400:
            sys.stderr.write(f"demo page: {self.requestline!r} → {status}\n")

    def log_error(self, format: str, *args: object) -> None:
        pass  # log_request reports the same request with its status


def demo_handler(api_events_url: str) -> type[DemoHandler]:
    """The demo server's handler class for a run whose API takes events at this URL."""

    class RunDemoHandler(DemoHandler):
        pass

    RunDemoHandler.api_events_url = api_events_url
    return RunDemoHandler


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def _local_host(host: str) -> str:
    """Where to reach a server that listens on ``host`` (a wildcard is not a destination)."""
    return "127.0.0.1" if host in ("", "0.0.0.0") else ("::1" if host == "::" else host)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class DevServers:
    def __init__(self, host: str, port: int, demo_port: int, reload: bool) -> None:
        self.host, self.port, self.demo_port, self.reload = host, port, demo_port, reload
        reach = _url_host(_local_host(host))
        self.api_url = f"http://{reach}:{port}"
        self.demo_url = f"http://{reach}:{demo_port}"
        self.stopping = threading.Event()
        self.api: subprocess.Popen[bytes] | None = None

    def run(self) -> int:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda _signum, _frame: self.stopping.set())
        try:
            handler = partial(demo_handler(f"{self.api_url}/events"), directory=str(CLIENT_DIR))
            demo = ThreadingHTTPServer((self.host, self.demo_port), handler)
        except OSError as exc:
            return _fail(
                f"the demo page cannot listen on {self.host}:{self.demo_port} ({exc.strerror}): "
                f"run make dev DEMO_PORT={_free_port_near(self.host, self.demo_port, [self.port])}"
            )
        threading.Thread(target=demo.serve_forever, name="demo", daemon=True).start()
        try:
            if not self._start_api():
                return 0 if self.stopping.is_set() else 1
            self._print_urls()
            return self._watch()
        finally:
            self._stop_api()
            demo.shutdown()
            demo.server_close()
            print(f"make dev: stopped; ports {self.port} and {self.demo_port} are free", flush=True)

    def _start_api(self) -> bool:
        """Start ``chalice local`` and wait until it answers; False if it did not."""
        chalice = Path(sys.executable).parent / "chalice"
        command = [str(chalice), "local", "--no-autoreload", "--stage", "dev"]
        command += ["--host", self.host, "--port", str(self.port)]
        self.api = api = subprocess.Popen(command, cwd=ROOT)
        deadline = time.monotonic() + STARTUP_SECONDS
        while not self.stopping.is_set():
            if api.poll() is not None:
                # Taken since the check? Then say so, as the check would have.
                busy = busy_ports_message(self.host, [(self.port, "PORT", "the API")])
                if busy is not None:
                    print(busy, file=sys.stderr, flush=True)
                else:
                    _fail(f"the API exited with code {api.returncode} before answering (see above)")
                return False
            if _answers(f"{self.api_url}/health"):
                return True
            if time.monotonic() > deadline:
                _fail(f"the API did not answer {self.api_url}/health in {STARTUP_SECONDS:.0f} s")
                return False
            self.stopping.wait(0.2)
        return False

    def _print_urls(self) -> None:
        data = os.environ.get("ANALYTICS_DATA_DIR") or "analytics_data"
        if not (CLIENT_DIR / "dist" / "owned-analytics.iife.js").exists():
            _fail("client/dist/ is missing, so the demo page cannot load the client")
        lines = [
            f"API:       {self.api_url}/events   (data under {data.rstrip('/')}/)",
            f"inspector: {self.api_url}/_dev/events   {self.api_url}/_dev/rejected",
            f"demo page: {self.demo_url}/demo/?api={self.api_url}/events",
            "Ctrl-C stops both." + ("  Code changes restart the API." if self.reload else ""),
        ]
        print("\n".join(lines), flush=True)

    def _watch(self) -> int:
        seen = _mtimes()
        while not self.stopping.wait(1.0):
            if self.api is not None and self.api.poll() is not None:
                return _fail(f"the API stopped (exit code {self.api.returncode}); demo stopped too")
            if not self.reload or (now := _mtimes()) == seen:
                continue
            changed = sorted(set(now.items()) ^ set(seen.items()))
            seen = now
            print(f"make dev: {changed[0][0]} changed: restarting the API", flush=True)
            self._stop_api()
            if not self._start_api():
                return 0 if self.stopping.is_set() else 1
            print("make dev: the API is back", flush=True)
        return 0

    def _stop_api(self) -> None:
        api = self.api
        if api is None or api.poll() is not None:
            return
        api.send_signal(signal.SIGINT)  # as Ctrl-C: it converts what is pending, then exits
        try:
            api.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            api.kill()
            api.wait()


def _mtimes() -> dict[str, float]:
    found: dict[str, float] = {}
    for pattern in WATCHED:
        for path in ROOT.glob(pattern):
            try:
                found[str(path.relative_to(ROOT))] = path.stat().st_mtime
            except OSError:
                continue
    return found


def _fail(message: str) -> int:
    print(f"make dev: {message}", file=sys.stderr, flush=True)
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/dev.py", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="the API's port (PORT)")
    parser.add_argument("--demo-port", type=int, default=8001, help="the demo's port (DEMO_PORT)")
    parser.add_argument("--reload", action="store_true", help="restart the API on code changes")
    parser.add_argument("--check-ports", action="store_true", help="only check the ports")
    args = parser.parse_args(argv)
    ports = [(args.port, "PORT", "the API"), (args.demo_port, "DEMO_PORT", "the demo page")]
    if args.port == args.demo_port:
        return _fail(f"PORT and DEMO_PORT are both {args.port}: give them different values")
    message = busy_ports_message(args.host, ports)
    if message is not None:
        print(message, file=sys.stderr, flush=True)
        return 1
    if args.check_ports:
        return 0
    return DevServers(args.host, args.port, args.demo_port, args.reload).run()


if __name__ == "__main__":
    sys.exit(main())
