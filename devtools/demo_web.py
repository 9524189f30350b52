"""`make demo`'s admin console: started on the demo's data (CONSOLE_AUTH=local), its one-time sign-in link
printed. In a terminal the demo then waits, everything still running (moto too: Block and Unblock work), until
Enter; run by a script, it follows the link itself and shows what the console's API says of the run."""

from __future__ import annotations

import http.cookiejar
import json
import re
import sys
import time
import urllib.request
from decimal import Decimal
from pathlib import Path

from devtools.demo_console import step
from devtools.local_stack import Service, free_port


def start(env: dict[str, str], work: Path) -> tuple[Service, str, str]:
    """The console on a free port; (its service, its address, its sign-in link)."""
    port = free_port()
    log = work / "console.log"
    service = Service({**env, "CONSOLE_AUTH": "local", "CONSOLE_HOST": "127.0.0.1", "CONSOLE_PORT": str(port)},
                      log, command=("console", "run")).start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = re.findall(r"console: sign in at (http://\S+)", log.read_text(errors="replace")) if log.exists() else []
        if found:
            try:
                urllib.request.urlopen(f"{url}/health", timeout=2).read()
                return service, url, found[0]
            except OSError:
                pass
        time.sleep(0.2)
    raise RuntimeError(f"the console did not start: see {log}")


def story(env: dict[str, str], work: Path) -> tuple[Service, bool]:
    step("The admin console (bedrockctl console run, CONSOLE_AUTH=local): usage, cost, people, blocks, audit")
    service, url, link = start(env, work)
    print(f"console at {url}: sign in with this one-time link (it works once):\n  {link}")
    if sys.stdin.isatty():
        input("Everything is still running (blocks from the console work on moto's IAM). Press Enter to stop. ")
        return service, True
    # Not in a terminal: follow the link (spending it) and read the overview the pages show.
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    opener.open(link, timeout=10).read()
    overview = json.loads(opener.open(f"{url}/api/overview", timeout=30).read())
    totals = overview["totals"]
    cost = Decimal(str(totals["cost_today_usd"])).quantize(Decimal("0.01"))
    print(f"signed in (the demo used the link); /api/overview: {totals['requests_today']} requests and"
          f" ${cost} today, {totals['active_today']} people active, {totals['blocked_now']}"
          f" blocked now; top spender {overview['top_spenders'][0]['principal'] if overview['top_spenders'] else '-'}")
    return service, totals["requests_today"] > 0
