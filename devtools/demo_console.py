"""What `make demo` prints and waits for: its headings, bedrockctl's output, /metrics scrapes, and the
polls of the database until the calls, their logs and the blocks have landed."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from bedrock_usage import db
from devtools.settings import AllSettings


def step(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def bedrockctl(env: dict[str, str], *args: str) -> str:
    out = subprocess.run([str(Path(sys.executable).parent / "bedrockctl"), *args], env=env, check=True,
                         capture_output=True, text=True)
    return out.stdout


def scrape(port: int) -> str:
    try:
        body: bytes = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()  # typeshed: Any
        return body.decode()
    except OSError as error:
        return f"# metrics unavailable: {error}"


def histogram_mean(metrics: str, name: str) -> tuple[float, float]:
    """(mean, count) of a histogram in a /metrics text; (0, 0) when it has no observations."""
    values = {line.split(" ")[0]: float(line.split(" ")[1]) for line in metrics.splitlines()
              if line.startswith(f"{name}_sum") or line.startswith(f"{name}_count")}
    count = values.get(f"{name}_count", 0.0)
    return (values[f"{name}_sum"] / count if count else 0.0), count


def wait_for_rows(settings: AllSettings, expected: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    rows = 0
    while time.monotonic() < deadline:
        conn = db.connect(settings.mysql)
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM bedrock_calls")
            rows = int(cur.fetchone()[0])  # type: ignore[index]
        conn.close()
        if rows >= expected:
            time.sleep(1)  # let the last batch's dead letter land too
            return rows
        time.sleep(0.5)
    print(f"timed out waiting for {expected} rows (have {rows})")
    return rows


def wait_for_logs(settings: AllSettings, expected: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        conn = db.connect(settings.mysql)
        with conn.cursor() as cur:
            cur.execute("SELECT (SELECT COUNT(*) FROM invocation_logs),"
                        " (SELECT COUNT(*) FROM bedrock_calls WHERE input_tokens IS NOT NULL)")
            found, joined = (int(n) for n in cur.fetchone())  # type: ignore[union-attr]
        conn.close()
        if found >= expected and joined >= expected:
            print(f"{found} invocation logs metered; {joined} calls hold their log's tokens and cost")
            return True
        time.sleep(0.25)
    print(f"timed out waiting for {expected} invocation logs")
    return False


def wait_for_blocks(settings: AllSettings, expected: set[str], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        conn = db.connect(settings.mysql)
        with conn.cursor() as cur:
            cur.execute("SELECT principal FROM blocks WHERE blocked = 1 AND iam_state = 'applied'")
            found = {str(r[0]) for r in cur.fetchall()}
        conn.close()
        if expected <= found:
            return True
        time.sleep(0.25)
    print(f"timed out waiting for {sorted(expected)} to be blocked")
    return False
