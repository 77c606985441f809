"""The Kamailio configuration a node of a cluster gets (tollgate/stack.py), and none for a
node alone (docs/NODES.md)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tollgate import config, stack

CFG = Path(__file__).resolve().parents[2] / "kamailio.cfg"
pytestmark = pytest.mark.unit

NODE_A = {"node_name": "a", "node_id": 1, "dmq_listen": "10.0.0.11:5090",
          "dmq_peers": "10.0.0.12:5090, 10.0.0.13:5090",
          "sip_peers": "10.0.0.12:5060 10.0.0.13:5060"}


def test_a_node_alone_gets_nothing_of_a_cluster(tmp_path):
    s = config.load(var_dir=str(tmp_path))
    assert "DMQ" not in stack.kamailio_local_cfg(s)
    assert "alias=udp" not in stack.kamailio_local_cfg(s)
    stack.prepare(s)
    assert not (s.var_path / "kamailio" / "kamailio-dmq.cfg").exists()


def test_a_node_of_a_cluster_gets_dmq_its_dialog_ids_and_its_peers_addresses(tmp_path):
    s = config.load(var_dir=str(tmp_path), **NODE_A)
    local = stack.kamailio_local_cfg(s).splitlines()
    for line in ("#!define WITH_DMQ", '#!define DMQ_SERVER_ADDRESS "sip:10.0.0.11:5090"',
                 "#!define DMQ_NODE_ID 1", "listen=udp:10.0.0.11:5090",
                 "alias=udp:10.0.0.12:5060", "alias=tcp:10.0.0.13:5060"):
        assert line in local
    stack.prepare(s)
    dmq = (s.var_path / "kamailio" / "kamailio-dmq.cfg").read_text().splitlines()
    assert [line for line in dmq if not line.startswith("#")] == [
        'modparam("dmq", "notification_address", "sip:10.0.0.12:5090")',
        'modparam("dmq", "notification_address", "sip:10.0.0.13:5090")']


def test_the_dialog_id_step_is_the_cfgs():
    step = re.search(r'modparam\("dialog", "h_id_step", (\d+)\)', CFG.read_text())
    assert step is not None and int(step.group(1)) == stack.DIALOG_ID_STEP


@pytest.mark.parametrize("node_id", [0, 64])
def test_a_node_of_a_cluster_needs_an_id_the_step_leaves_room_for(tmp_path, node_id):
    s = config.load(var_dir=str(tmp_path), **{**NODE_A, "node_id": node_id})
    with pytest.raises(ValueError, match="node_id"):
        stack.kamailio_local_cfg(s)


@pytest.mark.parametrize("value", ["10.0.0.12", "10.0.0.12:sip", ":5060"])
def test_an_address_without_host_and_port_is_refused(value):
    with pytest.raises(ValueError, match="host:port"):
        stack.addresses(value)
