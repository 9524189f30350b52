"""Email through an SMTP server: STARTTLS (verified against the system's CAs or SMTP_CA_FILE), then
login, as the seed system did with Gmail. One connection per message: simple, and nothing to go stale."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate

from notifier.render import Message

TIMEOUT_SECONDS = 30


class SmtpSender:
    def __init__(self, host: str, port: int, *, sender: str, username: str = "", password: str = "",
                 starttls: bool = True, ca_file: str | None = None) -> None:
        self._host, self._port, self._sender = host, port, sender
        self._username, self._password, self._starttls = username, password, starttls
        self._context = ssl.create_default_context(cafile=ca_file)

    def send(self, message: Message, recipient: str, key: str) -> str:
        email = EmailMessage()
        email["From"], email["To"], email["Subject"] = self._sender, recipient, message.subject
        email["Date"] = formatdate(localtime=False)
        domain = self._sender.rpartition("@")[2] or "localhost"
        # The same on a retry: a receiving server or client can recognise a duplicate.
        email["Message-ID"] = f"<{key}@{domain}>"
        email["Content-Language"] = message.language
        email.set_content(message.text)
        email.add_alternative(message.html, subtype="html")
        with smtplib.SMTP(self._host, self._port, timeout=TIMEOUT_SECONDS) as smtp:
            if self._starttls:
                smtp.starttls(context=self._context)
            if self._username:
                smtp.login(self._username, self._password)
            smtp.send_message(email)
        return str(email["Message-ID"])
