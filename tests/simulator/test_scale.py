"""Scale smoke test: a 100,000-device server is created at once and serves its first page."""

from __future__ import annotations

from tests.sim_fixtures import RunningSimulator


def test_a_large_server_serves_a_full_first_page(simulator: RunningSimulator) -> None:
    server = simulator.create_server(devices=100_000)
    client = simulator.apple(server)
    page = client.post("/server/devices", json={"limit": 1000}).json()
    serials = [d["serial_number"] for d in page["devices"]]
    assert len(serials) == len(set(serials)) == 1000 and page["more_to_follow"] is True
    last = simulator.sim.server(server.uuid).catalog.serial(99_999)
    details = client.post("/devices", json={"devices": [last]}).json()["devices"]
    assert details[last]["response_status"] == "SUCCESS"
    assert len(simulator.sim.server(server.uuid).overlay) == 0  # nothing was materialised
