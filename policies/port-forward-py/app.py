"""Port forward, in Python: the policy of policies/port-forward (Rust), rule
for rule and message for message, built with componentize-py.

Connections to `listen_port` arriving on the LAN are sent to `target`. The
default configuration is the hand-made setup wasmwall grew from: LAN clients
reach a server that listens on 127.0.0.1:4000 only by connecting to the
machine's port 80, and everything else coming in is dropped.

Config keys (all optional):
- `listen_port`: port clients connect to (default 80)
- `target`: where connections go, "addr:port" (default "127.0.0.1:4000")
- `protocol`: "tcp" or "udp" (default "tcp")
- `lan_interface`: comma-separated interface names the forward applies to
  (default: every interface that is up, except loopback)
- `allowed_sources`: comma-separated addresses or prefixes allowed to use the
  forward (default: anyone but this machine's own LAN addresses)

The three versions of this policy are tested to return identical rulesets
and identical error messages for every fixture in
policies/port-forward/fixtures. That is why the parsing below follows Rust's
standard library to the letter: which addresses and ports are accepted, how
an IPv6 address is printed, and the wording of each error.
"""

from typing import Callable, List, Optional, Tuple

import wit_world
from componentize_py_types import Err
from wit_world.imports import types as t

KNOWN_KEYS = ["listen_port", "target", "protocol", "lan_interface", "allowed_sources"]


class WitWorld(wit_world.WitWorld):
    def evaluate(
        self, state: t.WorldState, event: t.Event, config: List[Tuple[str, str]]
    ) -> t.Ruleset:
        try:
            return port_forward(state, Config(config))
        except PolicyError as e:
            raise Err(str(e))


class PolicyError(Exception):
    """A configuration the policy cannot turn into rules."""


# ---------------------------------------------------------------------------
# The policy
# ---------------------------------------------------------------------------


def port_forward(state: t.WorldState, config: "Config") -> t.Ruleset:
    config.reject_unknown(KNOWN_KEYS)
    listen_port = config.parse_or("listen_port", parse_u16, 80)
    if listen_port == 0:
        raise PolicyError("config key `listen_port`: port 0 is not a valid port")
    target = config.parse_or(
        "target", parse_socket_addr, SocketAddr(Ip(4, [127, 0, 0, 1]), 4000, 0)
    )
    if target.port == 0:
        raise PolicyError("config key `target`: port 0 is not a valid port")
    protocol_text = config.get_or("protocol", "tcp")
    if protocol_text == "tcp":
        protocol = t.Transport.TCP
    elif protocol_text == "udp":
        protocol = t.Transport.UDP
    else:
        raise PolicyError(
            'config key `protocol`: expected "tcp" or "udp", got '
            + rust_debug(protocol_text)
        )
    lan_interfaces = config.list("lan_interface")
    if not lan_interfaces:
        lan_interfaces = [i.name for i in state.interfaces if i.up and i.name != "lo"]
    allowed_sources = config.list("allowed_sources")

    target_ip = target.ip
    target_is_local = target_ip.is_loopback()
    target_text = str(target)

    # Whitelist by default: nothing comes in or through unless allowed.
    input_rules: List[t.Rule] = []
    forward_rules: List[t.Rule] = []
    prerouting_rules: List[t.Rule] = []
    sysctls: List[t.Sysctl] = []
    # Connections to the translated destination, wherever they are let in.
    to_target = rule(
        [daddr(str(target_ip)), dport(protocol, target.port)],
        t.Action_Accept(),
        counter=True,
    )

    if target_is_local:
        # The forwarded connection ends on this machine: let it in, and let
        # the local server's own loopback traffic through.
        input_rules.append(to_target)
        input_rules.append(
            rule([saddr(str(target_ip)), sport(protocol, target.port)], t.Action_Accept())
        )
    else:
        # The connection is routed on to another host.
        forward_rules.append(
            rule(
                [match(t.Matcher_CtState([t.CtState.ESTABLISHED, t.CtState.RELATED]))],
                t.Action_Accept(),
            )
        )
        forward_rules.append(to_target)
        if target_ip.version == 4:
            key = "net.ipv4.ip_forward"
        else:
            key = "net.ipv6.conf.all.forwarding"
        sysctls.append(t.Sysctl(key, "1"))

    for iface in lan_interfaces:
        base = [match(t.Matcher_Iifname(iface))]
        known = interface(state, iface)
        if not allowed_sources:
            # Anyone but this machine itself.
            matches = list(base)
            if known is not None:
                for ip in ips(known):
                    if same_family(ip, target_ip):
                        matches.append(match(t.Matcher_Saddr(ip), negate=True))
            sources = [matches]
        else:
            sources = [base + [saddr(src)] for src in allowed_sources]
        for matches in sources:
            prerouting_rules.append(
                rule(
                    matches + [dport(protocol, listen_port)],
                    t.Action_Dnat(nat_target(target)),
                    counter=True,
                    comment="port %d to %s" % (listen_port, target_text),
                )
            )
        # Routing outside traffic to 127.0.0.0/8 must be allowed on the
        # interface it arrives on; only an existing interface can be set.
        if target_is_local and target_ip.version == 4 and known is not None:
            sysctls.append(
                t.Sysctl(
                    "net.ipv4.conf.%s.route_localnet" % iface.replace(".", "/"), "1"
                )
            )

    filter_, nat = t.ChainType.FILTER, t.ChainType.NAT
    drop, accept = t.ChainPolicy.DROP, t.ChainPolicy.ACCEPT
    return t.Ruleset(
        chains=[
            base_chain("input", t.Hook.INPUT, filter_, 0, drop, input_rules),
            base_chain("forward", t.Hook.FORWARD, filter_, 0, drop, forward_rules),
            base_chain("prerouting", t.Hook.PREROUTING, nat, -100, accept, prerouting_rules),
        ],
        sets=[],
        maps=[],
        counters=[],
        limits=[],
        ct_helpers=[],
        flowtables=[],
        sysctls=sysctls,
    )


def interface(state: t.WorldState, name: str) -> Optional[t.NetworkInterface]:
    for i in state.interfaces:
        if i.name == name:
            return i
    return None


def ips(iface: t.NetworkInterface) -> List[str]:
    """The interface's addresses without their prefix length."""
    return [a.split("/", 1)[0] for a in iface.addresses]


def same_family(ip: str, other: "Ip") -> bool:
    parsed = parse_ip(ip)
    return parsed is not None and parsed.version == other.version


def nat_target(target: "SocketAddr") -> t.NatTarget:
    address = str(target.ip)
    if target.scope_id:
        address += "%%%d" % target.scope_id
    port = t.PortRange(target.port, target.port)
    return t.NatTarget(address, last_address=None, ports=port, flags=t.NatFlags(0))


# ---------------------------------------------------------------------------
# Rule building
# ---------------------------------------------------------------------------


def match(matcher: t.Matcher, negate: bool = False) -> t.MatchExpr:
    return t.MatchExpr(matcher, negate)


def saddr(prefix: str) -> t.MatchExpr:
    return match(t.Matcher_Saddr(prefix))


def daddr(prefix: str) -> t.MatchExpr:
    return match(t.Matcher_Daddr(prefix))


def sport(protocol: t.Transport, port: int) -> t.MatchExpr:
    return match(t.Matcher_Sport(t.Ports(protocol, port, port)))


def dport(protocol: t.Transport, port: int) -> t.MatchExpr:
    return match(t.Matcher_Dport(t.Ports(protocol, port, port)))


def rule(
    matches: List[t.MatchExpr],
    action: t.Action,
    counter: bool = False,
    comment: Optional[str] = None,
) -> t.Rule:
    statements: List[t.Statement] = [t.Statement_Counter()] if counter else []
    return t.Rule(matches, statements, action, comment)


def base_chain(
    name: str,
    hook: t.Hook,
    chain_type: t.ChainType,
    priority: int,
    policy: t.ChainPolicy,
    rules: List[t.Rule],
) -> t.Chain:
    base = t.BaseChain(hook, chain_type, t.Priority_Number(priority), policy)
    return t.Chain(name, base, rules)


# ---------------------------------------------------------------------------
# Config, as the Rust SDK's `Config` reads it
# ---------------------------------------------------------------------------


class Config:
    def __init__(self, entries: List[Tuple[str, str]]):
        self.entries = entries

    def get(self, key: str) -> Optional[str]:
        """The value of `key`, if set (the last one wins when repeated)."""
        for k, v in reversed(self.entries):
            if k == key:
                return v
        return None

    def get_or(self, key: str, default: str) -> str:
        value = self.get(key)
        return default if value is None else value

    def parse_or(self, key: str, parse: Callable, default):
        """The value of `key` parsed, or `default` when unset; the error names
        the key and the value."""
        value = self.get(key)
        if value is None:
            return default
        try:
            return parse(value)
        except ValueError as e:
            raise PolicyError(
                "config key `%s`: invalid value %s: %s" % (key, rust_debug(value), e)
            )

    def list(self, key: str) -> List[str]:
        """A comma-separated list, trimmed, empty items dropped."""
        value = self.get(key)
        if value is None:
            return []
        return [item.strip() for item in value.split(",") if item.strip()]

    def reject_unknown(self, known: List[str]) -> None:
        for k, _ in self.entries:
            if k not in known:
                raise PolicyError(
                    "unknown config key `%s` (known keys: %s)" % (k, ", ".join(known))
                )


def rust_debug(text: str) -> str:
    """`text` quoted and escaped as Rust's `{:?}` prints a string (for ASCII
    and printable characters; other control characters become \\u{..})."""
    escapes = {"\0": "\\0", "\t": "\\t", "\r": "\\r", "\n": "\\n", "\\": "\\\\", '"': '\\"'}
    out = []
    for c in text:
        if c in escapes:
            out.append(escapes[c])
        elif ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0:
            out.append("\\u{%x}" % ord(c))
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def parse_u16(text: str) -> int:
    """`u16::from_str`: an optional '+', ASCII digits, at most 65535."""
    digits = text
    if digits in ("+", "-"):
        raise ValueError("invalid digit found in string")
    if digits.startswith("+"):
        digits = digits[1:]
    if not text:
        raise ValueError("cannot parse integer from empty string")
    value = 0
    for c in digits:
        product = value * 10
        if not "0" <= c <= "9":
            raise ValueError("invalid digit found in string")
        value = product + ord(c) - ord("0")
        if value > 0xFFFF:
            raise ValueError("number too large to fit in target type")
    return value


# ---------------------------------------------------------------------------
# Addresses, as Rust's std::net parses and prints them
# ---------------------------------------------------------------------------


class Ip:
    def __init__(self, version: int, parts: List[int]):
        # IPv4: four octets; IPv6: eight 16-bit segments.
        self.version = version
        self.parts = parts

    def is_loopback(self) -> bool:
        if self.version == 4:
            return self.parts[0] == 127
        return self.parts == [0, 0, 0, 0, 0, 0, 0, 1]

    def __str__(self) -> str:
        if self.version == 4:
            return ".".join(str(p) for p in self.parts)
        s = self.parts
        if s[:6] == [0, 0, 0, 0, 0, 0xFFFF]:
            return "::ffff:%d.%d.%d.%d" % (s[6] >> 8, s[6] & 0xFF, s[7] >> 8, s[7] & 0xFF)
        # The longest run of two or more zero segments becomes "::" (the
        # first such run when two are equally long).
        best_start, best_len, start = 0, 0, None
        for i, segment in enumerate(s + [1]):
            if segment == 0:
                if start is None:
                    start = i
            elif start is not None:
                if i - start > best_len:
                    best_start, best_len = start, i - start
                start = None
        hexes = ["%x" % p for p in s]
        if best_len > 1:
            return (
                ":".join(hexes[:best_start]) + "::" + ":".join(hexes[best_start + best_len :])
            )
        return ":".join(hexes)


class SocketAddr:
    def __init__(self, ip: Ip, port: int, scope_id: int):
        self.ip = ip
        self.port = port
        self.scope_id = scope_id

    def __str__(self) -> str:
        if self.ip.version == 4:
            return "%s:%d" % (self.ip, self.port)
        if self.scope_id:
            return "[%s%%%d]:%d" % (self.ip, self.scope_id, self.port)
        return "[%s]:%d" % (self.ip, self.port)


def parse_ip(text: str) -> Optional[Ip]:
    """`IpAddr::from_str`, or None."""
    p = _Parser(text)
    ip = p.ipv4()
    if ip is None:
        ip = p.ipv6()
    return ip if ip is not None and p.done() else None


def parse_socket_addr(text: str) -> SocketAddr:
    """`SocketAddr::from_str`."""
    p = _Parser(text)
    addr = p.socket_addr_v4()
    if addr is None:
        addr = p.socket_addr_v6()
    if addr is None or not p.done():
        raise ValueError("invalid socket address syntax")
    return addr


class _Parser:
    """A port of the parser of Rust's core::net: each reader either consumes
    what it read and returns it, or consumes nothing and returns None."""

    def __init__(self, text: str):
        self.text = text
        self.pos = 0

    def done(self) -> bool:
        return self.pos == len(self.text)

    def atomically(self, read: Callable):
        start = self.pos
        result = read()
        if result is None:
            self.pos = start
        return result

    def peek(self) -> Optional[str]:
        return self.text[self.pos] if self.pos < len(self.text) else None

    def given_char(self, c: str) -> Optional[bool]:
        if self.peek() == c:
            self.pos += 1
            return True
        return None

    def separator(self, sep: str, index: int, read: Callable):
        def go():
            if index > 0 and self.given_char(sep) is None:
                return None
            return read()

        return self.atomically(go)

    def number(self, radix: int, max_digits: Optional[int], allow_zero_prefix: bool, limit: int):
        def go():
            has_leading_zero = self.peek() == "0"
            value, count = 0, 0
            while True:
                digit = _digit(self.peek(), radix)
                if digit is None:
                    break
                self.pos += 1
                value = value * radix + digit
                if value > limit:
                    return None
                count += 1
                if max_digits is not None and count > max_digits:
                    return None
            if count == 0:
                return None
            if not allow_zero_prefix and has_leading_zero and count > 1:
                return None
            return value

        return self.atomically(go)

    def ipv4(self) -> Optional[Ip]:
        def go():
            octets = []
            for i in range(4):
                octet = self.separator(".", i, lambda: self.number(10, 3, False, 0xFF))
                if octet is None:
                    return None
                octets.append(octet)
            return Ip(4, octets)

        return self.atomically(go)

    def _ipv6_groups(self, groups: List[int], limit: int) -> Tuple[int, bool]:
        for i in range(limit):
            # A trailing embedded IPv4 address needs two groups left.
            if i < limit - 1:
                v4 = self.separator(":", i, self.ipv4)
                if v4 is not None:
                    o = v4.parts
                    groups[i] = (o[0] << 8) | o[1]
                    groups[i + 1] = (o[2] << 8) | o[3]
                    return i + 2, True
            group = self.separator(":", i, lambda: self.number(16, 4, True, 0xFFFF))
            if group is None:
                return i, False
            groups[i] = group
        return limit, False

    def ipv6(self) -> Optional[Ip]:
        def go():
            head = [0] * 8
            head_size, head_ipv4 = self._ipv6_groups(head, 8)
            if head_size == 8:
                return Ip(6, head)
            # An embedded IPv4 address is only allowed at the very end.
            if head_ipv4:
                return None
            if self.given_char(":") is None or self.given_char(":") is None:
                return None
            # "::" stands for at least one zero group.
            tail = [0] * 7
            tail_size, _ = self._ipv6_groups(tail, 8 - (head_size + 1))
            head[8 - tail_size :] = tail[:tail_size]
            return Ip(6, head)

        return self.atomically(go)

    def port(self) -> Optional[int]:
        def go():
            if self.given_char(":") is None:
                return None
            return self.number(10, None, True, 0xFFFF)

        return self.atomically(go)

    def socket_addr_v4(self) -> Optional[SocketAddr]:
        def go():
            ip = self.ipv4()
            if ip is None:
                return None
            port = self.port()
            return None if port is None else SocketAddr(ip, port, 0)

        return self.atomically(go)

    def socket_addr_v6(self) -> Optional[SocketAddr]:
        def go():
            if self.given_char("[") is None:
                return None
            ip = self.ipv6()
            if ip is None:
                return None
            scope_id = self.atomically(
                lambda: self.given_char("%") and self.number(10, None, True, 0xFFFFFFFF)
            )
            if self.given_char("]") is None:
                return None
            port = self.port()
            return None if port is None else SocketAddr(ip, port, scope_id or 0)

        return self.atomically(go)


def _digit(c: Optional[str], radix: int) -> Optional[int]:
    if c is None:
        return None
    if "0" <= c <= "9":
        return ord(c) - ord("0")
    if radix == 16 and ("a" <= c.lower() <= "f"):
        return ord(c.lower()) - ord("a") + 10
    return None
