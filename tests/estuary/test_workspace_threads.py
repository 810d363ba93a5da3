"""One workspace shared by threads (sensors, the MCP server) builds one client and logs in once."""

from __future__ import annotations

import threading

from sophia_dagster.estuary.workspace import EstuaryWorkspace
from tests.estuary.conftest import make_workspace
from tests.fakes.estuary_server import FakeEstuary


def test_threads_sharing_a_workspace_get_one_client(fake: FakeEstuary) -> None:
    workspace: EstuaryWorkspace = make_workspace(fake)
    start, clients = threading.Barrier(16), []

    def use() -> None:
        start.wait()
        clients.append(workspace.client)

    threads = [threading.Thread(target=use) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(clients) == 16 and len({id(client) for client in clients}) == 1
