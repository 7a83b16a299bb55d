"""irctest controller for chat-server's IRC port.

Each test gets a fresh server (`--memory`, flood control off with `--rate 0`, no cap
per address with `--max-per-ip 0`) listening for IRC on the port irctest picks and for
the protocol's NDJSON on a second free port, which is how accounts are registered (IRC
has no registration command here). Run through tests/irctest/run.
"""

import json
import os
import socket
from typing import Optional, Set, Type

from irctest.basecontrollers import BaseServerController, DirectoryBasedController
from irctest.runner import NotImplementedByController
from irctest.specifications import Capabilities


class ChatController(BaseServerController, DirectoryBasedController):
    software_name = "chat-server"
    supported_sasl_mechanisms: Set[str] = {"PLAIN"}
    supports_sts = False
    capabilities = frozenset(
        {
            Capabilities.BATCH,
            Capabilities.ECHO_MESSAGE,
            Capabilities.MESSAGE_REDACTION,
            Capabilities.MESSAGE_TAGS,
            Capabilities.MULTI_PREFIX,
            Capabilities.SERVER_TIME,
        }
    )
    extban_mute_char = "m"
    # Posts are recorded (and fanned out) after the server has answered what came behind
    # them, PINGs included: give them a moment before a test reads what it expects.
    sync_sleep_time = 0.1

    def run(
        self,
        hostname: str,
        port: int,
        *,
        password: Optional[str],
        ssl: bool,
        run_services: bool,
        faketime: Optional[str],
        websocket_hostname: Optional[str],
        websocket_port: Optional[int],
    ) -> None:
        if websocket_hostname is not None or websocket_port is not None:
            raise NotImplementedByController("Websocket")
        if password is not None:
            raise NotImplementedByController("PASS as a server password")
        if ssl:
            raise NotImplementedByController("TLS in irctest")
        assert self.proc is None
        self.create_config()
        self.port = port
        self.hostname = hostname
        (_, self.ndjson_port) = self.get_hostname_and_port()
        self.proc = self.execute(
            [
                os.environ.get("CHAT_SERVER", "chat-server"),
                "--host",
                hostname,
                "--port",
                str(self.ndjson_port),
                "--irc-port",
                str(port),
                "--irc-name",
                "My.Little.Server",
                "--memory",
                "--rate",
                "0",
                "--max-per-ip",
                "0",
            ]
        )

    def wait_for_services(self) -> None:
        # Accounts are the server's own (see registerUser): no services to wait for.
        self.wait_for_port()

    def registerUser(self, case, username: str, password: Optional[str] = None) -> None:
        """Registers an account through the NDJSON port, then logs it out."""
        if not 8 <= len((password or "").encode()) <= 128:
            # The test would fail for a rule of ours, not for what it tests.
            raise NotImplementedByController("passwords outside 8 to 128 bytes (refused)")
        self.wait_for_port()
        with socket.create_connection((self.hostname, self.ndjson_port), timeout=5) as conn:
            hello = {
                "type": "hello",
                "protocol": 3,
                "name": username,
                "password": password or "",
                "register": True,
            }
            conn.sendall((json.dumps(hello) + "\n").encode())
            answer = json.loads(conn.makefile().readline())
            if answer.get("type") != "welcome":
                raise RuntimeError(f"cannot register {username}: {answer}")
            conn.sendall(b'{"type":"bye"}\n')
            conn.makefile().read()


def get_irctest_controller_class() -> Type[ChatController]:
    return ChatController
