"""The admin console in a real browser (Debian's chromium, driven by Playwright) over a real pipeline run:
calls and their invocation logs through Kinesis and the real KCL consumer into Redis and MariaDB, IAM on
moto. Signed in as the ALB signs people in (`x-amzn-oidc-data`, ES256, verified by the console against a
stand-in of the region's key endpoint). Every page visited is saved as a screenshot (.local/screenshots)."""

from __future__ import annotations

import csv
import io
import json
import random
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pymysql
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from playwright.sync_api import expect

from devtools.moto_server import MotoServer
from devtools.simulate import Person, bedrock_event, deliver, invocation_log, subscription_payload
from producer_config.rule import partition_key
from tests.e2e.conftest import Stack, e2e_env, rows, scalar, wait_until
from tests.e2e.console_harness import OTHER_ALB_ARN, AlbKeyEndpoint, chromium, console, screenshot

pytestmark = pytest.mark.e2e

ACCOUNT = "123456789012"  # moto's
MODEL = "anthropic.claude-sonnet-4-5-20250929-v1:0"
ALICE, BOB, CAROL = (Person(n, sso=False, account=ACCOUNT) for n in ("console-alice", "console-bob", "console-carol"))
CALLS = {ALICE: 6, BOB: 4, CAROL: 3}
ADMIN, LEAD = "admin@example.com", "lead@example.com"  # LEAD administers team alpha only

QUOTAS = f"""
teams:
  alpha: {{admins: [{LEAD}]}}
  beta: {{}}
users:
  "{ALICE.quota_key}": {{team: alpha, name: Alice}}
  "{BOB.quota_key}": {{team: alpha, name: Bob}}
  "{CAROL.quota_key}": {{team: beta, name: Carol}}
  "sso:{ADMIN}": {{team: beta, name: The Admin}}
"""


def _bedrockctl(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([str(Path(sys.executable).parent / "bedrockctl"), *args], env=env, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _run_pipeline(stack: Stack, mysql: pymysql.connections.Connection, env: dict[str, str]) -> int:
    """13 calls of three people today, with their logs, through the real consumer; its metrics port."""
    rng = random.Random(14)
    now = datetime.now(UTC) - timedelta(minutes=5)
    calls = []
    for person, n in CALLS.items():
        for i in range(n):
            call = bedrock_event(person, now + timedelta(seconds=len(calls) + i), rng)
            call["detail"]["requestParameters"]["modelId"] = MODEL
            calls.append(call)
    logs = [invocation_log(c, rng, input_tokens=rng.randrange(1000, 5000), output_tokens=rng.randrange(100, 900))
            for c in calls]
    consumer = stack.start(stack.application("console"), **{k: v for k, v in env.items() if k.startswith("DEFAULT_")})
    assert deliver(stack.kinesis, stack.stream, calls) == len(calls)
    for i in range(0, len(logs), 5):
        stack.kinesis.put_record(StreamName=stack.stream, Data=subscription_payload(logs[i:i + 5]),
                                 PartitionKey=partition_key(calls[i]))
    wait_until(lambda: scalar(mysql, "SELECT COUNT(*) FROM bedrock_calls WHERE cost_usd IS NOT NULL"),
               lambda n: n == len(calls), timeout=90, what="every call metered", alive=[consumer])
    return consumer.metrics_port


def _texts(page: Any, selector: str) -> list[str]:
    return [t.strip() for t in page.locator(selector).all_inner_texts()]


@pytest.fixture
def keys() -> Any:
    endpoint = AlbKeyEndpoint()
    yield endpoint
    endpoint.close()


def _console_env(moto: MotoServer, keys: AlbKeyEndpoint, **more: str) -> dict[str, str]:
    return {**moto.env(), **e2e_env(CONSOLE_AUTH="alb", CONSOLE_ALB_ARN="arn:aws:elasticloadbalancing:us-east-1:"
                                    "123456789012:loadbalancer/app/bedrock-console/50dc6c495c0c9188",
                                    CONSOLE_ALB_KEYS_URL=keys.url, CONSOLE_ADMINS=ADMIN, **more)}


def test_console_over_a_pipeline_run(stack: Stack, mysql: pymysql.connections.Connection, keys: AlbKeyEndpoint,
                                     tmp_path: Path) -> None:
    iam = stack.moto.client("iam")
    for person in CALLS:
        iam.create_user(UserName=person.name)
    env = _console_env(stack.moto, keys, STREAM_NAME=stack.stream, DEFAULT_DAILY_REQUEST_LIMIT="100",
                       DEFAULT_MONTHLY_REQUEST_LIMIT="1000")
    quota_file = tmp_path / "quotas.yaml"
    quota_file.write_text(QUOTAS)
    _bedrockctl(env, "limits", "apply", str(quota_file))
    metrics_port = _run_pipeline(stack, mysql, env)
    env["CONSOLE_SERVICE_URLS"] = f"consumer=http://127.0.0.1:{metrics_port}"
    (cost_today,) = rows(mysql, "SELECT SUM(cost_usd) FROM invocation_logs")[0]

    with console(env, tmp_path / "console.log") as running, chromium() as browser:
        admin = browser.new_context(extra_http_headers={"x-amzn-oidc-data": keys.token(ADMIN)},
                                    accept_downloads=True)
        page = admin.new_page()

        # Overview: the run's numbers.
        assert page.goto(running.url + "/").status == 200
        assert page.inner_text("#requests-today") == "13"
        assert page.inner_text("#cost-today") == f"${Decimal(cost_today).quantize(Decimal('0.01')):,}"
        assert page.inner_text("#active-today") == "3"
        assert page.inner_text("#blocked-now") == "0"
        assert sorted(_texts(page, "#spend-by-team tbody td:first-child")) == ["alpha", "beta"]
        screenshot(page, "overview")

        # People: sort by today's requests, both ways; filter by team (htmx swaps the table).
        page.goto(running.url + "/people")
        page.click('th a[data-sort="requests"]')
        page.wait_for_url("**sort=requests**order=desc**")
        assert _texts(page, "#people-table tbody td:first-child a") == ["Alice", "Bob", "Carol"]
        page.click('th a[data-sort="requests"]')
        page.wait_for_url("**order=asc**")
        assert _texts(page, "#people-table tbody td:first-child a") == ["Carol", "Bob", "Alice"]
        page.select_option('select[name="team"]', "beta")
        expect(page.locator("#people-table tbody tr")).to_have_count(1)  # (no eval: the console's CSP forbids it)
        assert _texts(page, "#people-table tbody td:first-child a") == ["Carol"]
        screenshot(page, "people")

        # The CSV of the rows shown equals `bedrockctl usage --json`.
        page.goto(running.url + "/people?sort=principal&order=asc")
        # Fetched by the browser context (its headers and cookies): Chromium's download manager does not send
        # the test's stand-in for the ALB's header, which in AWS the ALB adds to every request, downloads too.
        download = admin.request.get(running.url + str(page.get_attribute("#csv-shown", "href")))
        assert download.status == 200 and download.headers["content-disposition"].startswith("attachment")
        table = list(csv.DictReader(io.StringIO(download.text())))
        usage = sorted(json.loads(_bedrockctl(env, "usage", "--json"), parse_float=Decimal),
                       key=lambda u: u["principal"])
        assert [r["principal"] for r in table] == [u["principal"] for u in usage] == sorted(p.quota_key for p in CALLS)
        for row, used in zip(table, usage, strict=True):
            assert (row["team"], int(row["requests"]), int(row["monthly_requests"]), Decimal(row["cost_usd"]),
                    Decimal(row["monthly_cost_usd"])) == (used["team"], used["requests"], used["monthly_requests"],
                                                          Decimal(used["cost_usd"]), Decimal(used["monthly_cost_usd"]))

        # Block Alice for 4 hours with a reason: confirmed, denied in IAM, in the audit trail.
        page.goto(running.url + f"/person?key={ALICE.quota_key}")
        screenshot(page, "person")
        # Her day by tool: the simulator's calls carry Boto3's user agent and no API key.
        tool_cells = page.locator("#tools tbody td").all_inner_texts()
        assert tool_cells[:6] == ["Boto3", "user-agent", "alpha", str(CALLS[ALICE]), "0", "0"]
        model_cells = page.locator("section.two > div").first.locator("tbody td").all_inner_texts()
        assert len(tool_cells) == 7 and tool_cells[6] == model_cells[-1] != "$0.00"  # one model, one tool
        form = page.locator("#block-form")
        form.locator('input[name="mode"][value="for"]').check()
        form.locator('input[name="duration"]').fill("4h")
        form.locator('input[name="reason"]').fill("runaway agent loop")
        form.locator("button").click()
        assert "IAM: deny user:console-alice" in page.inner_text("#preview")
        screenshot(page, "confirm-block")
        assert not scalar(mysql, "SELECT COUNT(*) FROM blocks WHERE blocked = 1")  # nothing before the confirmation
        page.click('#confirm-form button[value="confirm"]')
        assert page.inner_text("#notice") == "Blocked."
        assert "runaway agent loop" in page.inner_text("#block-state")
        attached = iam.list_attached_user_policies(UserName=ALICE.name)["AttachedPolicies"]
        assert [p["PolicyName"] for p in attached] == ["BedrockUsageControlDeny"]
        assert rows(mysql, "SELECT actor, action, outcome, reason FROM enforcement_actions WHERE principal = %s",
                    ALICE.quota_key) == [(ADMIN, "block", "applied", "runaway agent loop")]
        (until,) = rows(mysql, "SELECT blocked_until FROM blocks WHERE principal = %s", ALICE.quota_key)[0]
        assert timedelta(hours=3, minutes=58) < until - datetime.now(UTC).replace(tzinfo=None) <= timedelta(hours=4)
        page.goto(running.url + "/blocks")
        assert "runaway agent loop" in page.inner_text(".blocked")
        assert ADMIN in page.inner_text(".audit")
        screenshot(page, "blocks")

        # Unblock with protection.
        page.goto(running.url + f"/person?key={ALICE.quota_key}")
        form = page.locator("#unblock-form")
        form.locator('input[name="reason"]').fill("loop fixed")
        form.locator('input[name="protect"]').check()
        form.locator("button").click()
        page.click('#confirm-form button[value="confirm"]')
        assert page.inner_text("#notice") == "Unblocked."
        assert iam.list_attached_user_policies(UserName=ALICE.name)["AttachedPolicies"] == []
        assert rows(mysql, "SELECT blocked, protected_until IS NOT NULL FROM blocks WHERE principal = %s",
                    ALICE.quota_key) == [(0, 1)]
        assert rows(mysql, "SELECT actor, reason FROM enforcement_actions WHERE principal = %s AND action = 'unblock'",
                    ALICE.quota_key) == [(ADMIN, "loop fixed")]
        assert "protected from quota blocks until" in page.inner_text("#block-state")

        # Carol (team beta) blocked and unblocked by the admin: rows of another team for the team admin below.
        admin_csrf = next(c["value"] for c in admin.cookies() if c["name"] == "bu_console_csrf")
        for action, form in (("block", {"mode": "indefinite", "reason": "audit of beta"}),
                             ("unblock", {"reason": "audit done"})):
            done = admin.request.post(running.url + f"/person/{action}", form={
                "key": CAROL.quota_key, "step": "confirm", "csrf_token": admin_csrf, **form})
            assert done.status == 200 and done.url.endswith(f"done={action}ed"), (action, done.url)
        assert scalar(mysql, "SELECT COUNT(*) FROM enforcement_actions WHERE principal = %s", CAROL.quota_key) == 2

        for path, name in (("/teams", "teams"), ("/team?name=alpha", "team"), ("/cost", "cost"),
                           ("/hourly?tz=UTC", "hourly"), ("/services", "health")):
            assert page.goto(running.url + path).status == 200, path
            screenshot(page, name)
        page.goto(running.url + "/cost")
        assert page.inner_text("#cost-total") == f"${Decimal(cost_today).quantize(Decimal('0.01')):,}"
        page.goto(running.url + "/hourly")
        page.wait_for_url("**tz=UTC**")  # redrawn in the viewer's time zone (headless Chromium's: UTC)
        assert page.inner_text("#heat-zone") == "UTC"
        assert page.inner_text("#heat-map tbody tr:last-child td:last-child") == "13"
        admin.close()

        # On a phone: no page is wider than the screen (wide tables scroll inside their box).
        phone = browser.new_context(extra_http_headers={"x-amzn-oidc-data": keys.token(ADMIN)},
                                    viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
        page = phone.new_page()
        for path, name in (("/", "phone-overview"), ("/people", "phone-people"),
                           (f"/person?key={ALICE.quota_key}", "phone-person"), ("/hourly?tz=UTC", "phone-hourly")):
            page.goto(running.url + path)
            width, screen = page.locator("html").evaluate("e => [e.scrollWidth, window.innerWidth]")
            assert width <= screen + 1, path
            screenshot(page, name)
        phone.close()

        # A team admin sees and acts on their own team only.
        lead = browser.new_context(extra_http_headers={"x-amzn-oidc-data": keys.token(LEAD)})
        page = lead.new_page()
        page.goto(running.url + "/people?active=all")
        assert sorted(_texts(page, "#people-table tbody td:first-child a")) == ["Alice", "Bob"]
        assert page.goto(running.url + "/team?name=beta").status == 403
        assert page.goto(running.url + f"/person?key={CAROL.quota_key}").status == 403
        assert page.goto(running.url + "/api/team?name=beta").status == 403
        page.goto(running.url + "/")
        csrf = next(c["value"] for c in lead.cookies() if c["name"] == "bu_console_csrf")
        refused = lead.request.post(running.url + "/person/block", form={
            "key": CAROL.quota_key, "mode": "day", "reason": "not yours", "step": "confirm", "csrf_token": csrf})
        assert refused.status == 403
        assert scalar(mysql, "SELECT COUNT(*) FROM enforcement_actions WHERE principal = %s", CAROL.quota_key) == 2
        assert page.goto(running.url + "/services").status == 403  # health is for the console's admins
        for path in ("/people.csv?team=beta&every_page=true", "/cost?team=beta", "/hourly?team=beta",
                     "/api/cost?team=beta", "/api/people?team=beta", f"/api/person?key={CAROL.quota_key}",
                     "/person?key=arn:aws:iam::123456789012:user/nobody-at-all"):  # unknown: the same 403
            assert lead.request.get(running.url + path).status == 403, path
        page.goto(running.url + f"/blocks?principal={CAROL.quota_key}")
        assert "Nothing recorded." in page.inner_text("main")  # Carol's two rows are not theirs to see
        assert CAROL.quota_key not in lead.request.get(running.url + "/audit.csv").text()
        assert ALICE.quota_key in lead.request.get(running.url + "/audit.csv").text()  # their own team's trail
        assert {d["team"] for d in lead.request.get(running.url + "/api/decisions?hours=24").json()} <= {"alpha"}
        refused = lead.request.post(running.url + "/person/unblock", form={
            "key": CAROL.quota_key, "reason": "not yours", "step": "confirm", "csrf_token": csrf})
        assert refused.status == 403
        # Forms without their token, or posted from another site, are refused before anything is read.
        for form, headers in (({"key": BOB.quota_key, "mode": "day", "reason": "x", "step": "confirm"}, {}),
                              ({"key": BOB.quota_key, "mode": "day", "reason": "x", "step": "confirm",
                                "csrf_token": csrf}, {"Origin": "https://evil.example.com"})):
            assert lead.request.post(running.url + "/person/block", form=form, headers=headers).status == 403
        assert not scalar(mysql, "SELECT COUNT(*) FROM blocks WHERE blocked = 1")
        lead.close()

        # Nobody blocks or unblocks themselves from the console (the admin is a person of team beta).
        admin = browser.new_context(extra_http_headers={"x-amzn-oidc-data": keys.token(ADMIN)})
        admin.new_page().goto(running.url + "/")
        csrf = next(c["value"] for c in admin.cookies() if c["name"] == "bu_console_csrf")
        myself = {"key": f"sso:{ADMIN}", "reason": "me", "protect": "on", "step": "confirm", "csrf_token": csrf}
        assert admin.request.post(running.url + "/person/unblock", form=myself).status == 403
        admin.close()

        # Tokens that are not the ALB's: forged (another key, the same key ID), expired, another ALB's, none.
        forger = ec.generate_private_key(ec.SECP256R1())
        tokens = [keys.token(ADMIN, key=forger), keys.token(ADMIN, expires_in=-60),
                  keys.token(ADMIN, signer=OTHER_ALB_ARN)]
        for token in [*tokens, None]:
            context = browser.new_context(extra_http_headers={"x-amzn-oidc-data": token} if token else {})
            answer = context.new_page().goto(running.url + "/people")
            assert answer.status == 401
            context.close()
        # A signed-in person who is no admin of anything is refused too.
        context = browser.new_context(extra_http_headers={"x-amzn-oidc-data": keys.token("someone@example.com")})
        assert context.new_page().goto(running.url + "/").status == 403
        context.close()
        # No credential reaches a log: the refusals are logged with their reason only.
        log = running.log()
        assert "token expired" in log and "not this console's load balancer" in log
        assert not any(token.split(".")[2] in log for token in tokens)


def test_local_sign_in_link_works_once(mysql: pymysql.connections.Connection, redis_client: Any,
                                       tmp_path: Path) -> None:
    env = e2e_env(CONSOLE_AUTH="local", CONSOLE_LOCAL_ADMIN="me@localhost", CONSOLE_SERVICE_URLS="")
    with console(env, tmp_path / "console.log") as running, chromium() as browser:
        (link,) = re.findall(r"console: sign in at (http://\S+)", running.log())
        assert "token=" not in "".join(line for line in running.log().splitlines() if line.startswith("{"))
        page = browser.new_page()
        assert page.goto(running.url + "/").status == 401  # nobody signed in yet
        assert page.goto(link).status == 200 and page.url == running.url + "/"
        assert "me@localhost" in page.inner_text(".who")
        screenshot(page, "signed-in-locally")
        assert browser.new_page().goto(link).status == 401  # spent: a second browser cannot use it
        page.click(".who button")  # sign out (a form with its CSRF token)
        assert page.goto(running.url + "/people").status == 401
