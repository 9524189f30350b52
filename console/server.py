"""`bedrockctl console run`: build the app and serve it with uvicorn on CONSOLE_HOST:CONSOLE_PORT."""

from __future__ import annotations

import logging

import uvicorn

from bedrock_usage import logs
from console.app import create_app
from console.settings import ConsoleAuth, ConsoleSettings

log = logging.getLogger("console")


def run(settings: ConsoleSettings) -> int:
    settings.check_serving()
    logs.setup("console", settings.log_level)
    app = create_app(settings)
    if settings.console_auth is ConsoleAuth.LOCAL:
        # Printed, never logged: a log line is kept and shipped; the link is a credential.
        host = "127.0.0.1" if settings.console_host in ("0.0.0.0", "::") else settings.console_host
        print(f"console: sign in at http://{host}:{settings.console_port}{app.state.login.link()}", flush=True)
    uvicorn.run(app, host=settings.console_host, port=settings.console_port, log_config=None, access_log=False,
                proxy_headers=True, server_header=False,
                # Only the ALB reaches the task (its security group): its X-Forwarded-Proto is the scheme.
                forwarded_allow_ips="*")
    return 0
