"""A MAC-learning switch for OpenFlow 1.3, written against os-ken's API (OSKenApp).

strato's real-peer acceptance tests (tests/tests/ryu.rs) run it as the switch's external
controller; it was first validated against Open vSwitch's userspace datapath.

    osken-manager --ofp-tcp-listen-port 6633 labs/osken/simple_switch_13.py

Contract:
- At switch connect (FEATURES_REPLY) it optionally sends ROLE_REQUEST (SS13_ROLE), then, unless
  it is a SLAVE, installs the table-miss flow: priority 0, empty match, output CONTROLLER with
  max_len NO_BUFFER (the whole frame comes up in the packet_in).
- On each packet_in (in_port from the OXM match) it learns eth_src -> in_port for that
  datapath; if eth_dst is known it installs a flow priority SS13_PRIORITY, cookie SS13_COOKIE,
  match in_port + eth_dst, action output:PORT, then sends the frame with packet_out
  (buffer_id NO_BUFFER, the frame's data, action output:PORT or FLOOD).
- A SLAVE sends no flow_mod and no packet_out (the switch would refuse them); it still learns
  from any packet_in it is sent.
- Failover: when the file named by SS13_PROMOTE_FILE appears (polled every 0.2 s), the app
  sends ROLE_REQUEST MASTER to every connected switch with the generation_id written in the
  file (else its last one + 1), and on the ROLE_REPLY installs the table-miss flow. A changed
  file content promotes again.
- Every event it handles is printed as one line on stdout, starting with "SS13 ", so tests can
  wait for "SS13 role_reply ... role=MASTER", "SS13 flow_add ...", "SS13 error ..." etc.

Environment:
  SS13_ROLE          master | slave | equal (default: send no ROLE_REQUEST, i.e. EQUAL)
  SS13_GENERATION    generation_id of the first ROLE_REQUEST (default 1)
  SS13_PROMOTE_FILE  trigger file for promotion to MASTER (default: none)
  SS13_COOKIE        cookie of learned flows (default 0x5157)
  SS13_PRIORITY      priority of learned flows (default 10)
  SS13_IDLE_TIMEOUT  idle_timeout of learned flows in seconds (default 0: permanent)
"""

import os
import sys

from os_ken.base import app_manager
from os_ken.controller import ofp_event
from os_ken.controller.handler import (CONFIG_DISPATCHER, DEAD_DISPATCHER,
                                       MAIN_DISPATCHER, set_ev_cls)
from os_ken.lib import hub
from os_ken.lib.packet import ether_types, ethernet, packet
from os_ken.ofproto import ofproto_v1_3


def _env_int(name, default):
    v = os.environ.get(name)
    return default if v is None or v == "" else int(v, 0)


def say(*words):
    """One event line on stdout (flushed: tests read it while we run)."""
    print("SS13", *words, flush=True)


ROLE_NAMES = {
    ofproto_v1_3.OFPCR_ROLE_NOCHANGE: "NOCHANGE",
    ofproto_v1_3.OFPCR_ROLE_EQUAL: "EQUAL",
    ofproto_v1_3.OFPCR_ROLE_MASTER: "MASTER",
    ofproto_v1_3.OFPCR_ROLE_SLAVE: "SLAVE",
}
ROLE_BY_ARG = {
    "master": ofproto_v1_3.OFPCR_ROLE_MASTER,
    "slave": ofproto_v1_3.OFPCR_ROLE_SLAVE,
    "equal": ofproto_v1_3.OFPCR_ROLE_EQUAL,
}


class SimpleSwitch13(app_manager.OSKenApp):
    """Learning switch: table-miss to the controller, dst-MAC flows with our cookie."""

    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        role = os.environ.get("SS13_ROLE", "").strip().lower()
        if role and role not in ROLE_BY_ARG:
            sys.exit("SS13_ROLE must be master, slave or equal, not %r" % role)
        self.want_role = ROLE_BY_ARG.get(role)
        self.generation = _env_int("SS13_GENERATION", 1)
        self.cookie = _env_int("SS13_COOKIE", 0x5157)
        self.priority = _env_int("SS13_PRIORITY", 10)
        self.idle_timeout = _env_int("SS13_IDLE_TIMEOUT", 0)
        self.promote_file = os.environ.get("SS13_PROMOTE_FILE") or None
        # dpid -> {mac: port}; dpid -> datapath; dpid -> our current role there
        self.mac_to_port = {}
        self.datapaths = {}
        self.roles = {}
        say("start", "role=%s" % (role or "none"), "generation=%d" % self.generation,
            "cookie=%#x" % self.cookie, "priority=%d" % self.priority,
            "promote_file=%s" % self.promote_file)
        if self.promote_file:
            hub.spawn(self._watch_promote_file)

    # ---- helpers ----

    def _is_slave(self, dpid):
        return self.roles.get(dpid) == ofproto_v1_3.OFPCR_ROLE_SLAVE

    def _role_request(self, dp, role, generation):
        parser = dp.ofproto_parser
        dp.send_msg(parser.OFPRoleRequest(dp, role, generation))
        say("role_request", "dpid=%016x" % dp.id, "role=%s" % ROLE_NAMES[role],
            "generation=%d" % generation)

    def _install_table_miss(self, dp):
        ofp, parser = dp.ofproto, dp.ofproto_parser
        actions = [parser.OFPActionOutput(ofp.OFPP_CONTROLLER, ofp.OFPCML_NO_BUFFER)]
        inst = [parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, actions)]
        dp.send_msg(parser.OFPFlowMod(datapath=dp, cookie=self.cookie, priority=0,
                                      match=parser.OFPMatch(), instructions=inst))
        say("table_miss", "dpid=%016x" % dp.id)

    def _watch_promote_file(self):
        seen = None
        while True:
            hub.sleep(0.2)
            try:
                with open(self.promote_file) as f:
                    content = f.read().strip()
            except OSError:
                continue
            if content == seen:
                continue
            seen = content
            try:
                gen = int(content, 0) if content else self.generation + 1
            except ValueError:
                say("promote_file_bad", repr(content))
                continue
            self.generation = gen
            self.want_role = ofproto_v1_3.OFPCR_ROLE_MASTER
            say("promote", "generation=%d" % gen, "switches=%d" % len(self.datapaths))
            for dp in list(self.datapaths.values()):
                self._role_request(dp, ofproto_v1_3.OFPCR_ROLE_MASTER, gen)

    # ---- events ----

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def switch_features_handler(self, ev):
        dp = ev.msg.datapath
        self.datapaths[dp.id] = dp
        self.mac_to_port.setdefault(dp.id, {})
        say("switch_features", "dpid=%016x" % dp.id, "n_buffers=%d" % ev.msg.n_buffers,
            "n_tables=%d" % ev.msg.n_tables)
        if self.want_role is not None:
            # The switch handles messages in order: a MASTER's table-miss below follows its
            # role change; a SLAVE installs nothing until it is promoted.
            self.roles[dp.id] = self.want_role
            self._role_request(dp, self.want_role, self.generation)
        if not self._is_slave(dp.id):
            self._install_table_miss(dp)

    @set_ev_cls(ofp_event.EventOFPRoleReply, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def role_reply_handler(self, ev):
        msg = ev.msg
        dp = msg.datapath
        before = self.roles.get(dp.id)
        self.roles[dp.id] = msg.role
        say("role_reply", "dpid=%016x" % dp.id, "role=%s" % ROLE_NAMES.get(msg.role, msg.role),
            "generation=%d" % msg.generation_id)
        if (msg.role == ofproto_v1_3.OFPCR_ROLE_MASTER
                and before == ofproto_v1_3.OFPCR_ROLE_SLAVE):
            # Promoted: the old master's table-miss may be gone; ours is idempotent.
            self._install_table_miss(dp)

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def packet_in_handler(self, ev):
        msg = ev.msg
        dp = msg.datapath
        ofp, parser = dp.ofproto, dp.ofproto_parser
        in_port = msg.match["in_port"]
        pkt = packet.Packet(msg.data)
        eth = pkt.get_protocol(ethernet.ethernet)
        if eth is None:
            say("packet_in_not_ethernet", "dpid=%016x" % dp.id, "in_port=%d" % in_port)
            return
        if eth.ethertype == ether_types.ETH_TYPE_LLDP:
            return
        table = self.mac_to_port.setdefault(dp.id, {})
        table[eth.src] = in_port
        out_port = table.get(eth.dst, ofp.OFPP_FLOOD)
        say("packet_in", "dpid=%016x" % dp.id, "in_port=%d" % in_port, "src=%s" % eth.src,
            "dst=%s" % eth.dst, "buffer_id=%#x" % msg.buffer_id, "reason=%d" % msg.reason,
            "out=%s" % ("FLOOD" if out_port == ofp.OFPP_FLOOD else out_port))
        if self._is_slave(dp.id):
            return
        actions = [parser.OFPActionOutput(out_port)]
        if out_port != ofp.OFPP_FLOOD:
            match = parser.OFPMatch(in_port=in_port, eth_dst=eth.dst)
            inst = [parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, actions)]
            dp.send_msg(parser.OFPFlowMod(datapath=dp, cookie=self.cookie,
                                          priority=self.priority,
                                          idle_timeout=self.idle_timeout, match=match,
                                          instructions=inst))
            say("flow_add", "dpid=%016x" % dp.id, "in_port=%d" % in_port,
                "eth_dst=%s" % eth.dst, "output=%d" % out_port)
        # NO_BUFFER always: strato reports n_buffers=0, and the whole frame came up.
        dp.send_msg(parser.OFPPacketOut(datapath=dp, buffer_id=ofp.OFP_NO_BUFFER,
                                        in_port=in_port, actions=actions, data=msg.data))

    @set_ev_cls(ofp_event.EventOFPPortStatus, MAIN_DISPATCHER)
    def port_status_handler(self, ev):
        msg = ev.msg
        say("port_status", "dpid=%016x" % msg.datapath.id, "reason=%d" % msg.reason,
            "port=%d" % msg.desc.port_no, "name=%s" % msg.desc.name.decode(errors="replace"))

    @set_ev_cls(ofp_event.EventOFPErrorMsg, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def error_handler(self, ev):
        msg = ev.msg
        say("error", "dpid=%016x" % msg.datapath.id, "type=%d" % msg.type,
            "code=%d" % msg.code, "data=%s" % bytes(msg.data[:16]).hex())

    @set_ev_cls(ofp_event.EventOFPStateChange, DEAD_DISPATCHER)
    def dead_handler(self, ev):
        dp = ev.datapath
        if dp.id is not None and self.datapaths.get(dp.id) is dp:
            del self.datapaths[dp.id]
            self.roles.pop(dp.id, None)
            say("switch_gone", "dpid=%016x" % dp.id)
