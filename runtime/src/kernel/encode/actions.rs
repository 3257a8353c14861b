//! A rule's statements and its action as the expressions nft emits, from
//! rustables where it has them and hand-made (`expr`) where it has not.

use std::net::IpAddr;

use rustables::data_type::ip_to_vec;
use rustables::expr::{
    Bitwise, Conntrack, ConntrackKey, Counter, Immediate, Meta, MetaType, Payload, Register,
    VerdictKind,
};
use rustables::sys;

use super::expr::{Attrs, Expr, nat_flags};
use super::rule::RuleBuilder;
use crate::ir::{
    Action, Family, MarkUpdate, MssClamp, NatFlags, NatTarget, PortRange, Rate, RejectWith,
    Statement,
};

/// The kernel's registers as nft numbers them (16 bytes each).
const REGS: [Register; 4] = [
    Register::Reg1,
    Register::Reg2,
    Register::Reg3,
    Register::Reg4,
];
/// TCP option kind of the MSS (RFC 9293).
const TCPOPT_MAXSEG: u8 = 2;
/// Offset and length of the MSS value in its option: after kind and length.
const MSS_OFFSET: u32 = 2;
const MSS_LEN: u32 = 2;

fn reg_number(r: Register) -> u32 {
    match r {
        Register::Verdict => 0,
        Register::Reg1 => 1,
        Register::Reg2 => 2,
        Register::Reg3 => 3,
        Register::Reg4 => 4,
    }
}

impl RuleBuilder {
    pub(super) fn hand_made(&mut self, e: Expr) {
        self.push(e.stand_in());
    }

    pub fn add_statement(&mut self, statement: &Statement) -> Result<(), String> {
        match statement {
            Statement::Counter => self.push(Counter::default()),
            Statement::CounterNamed(name) => self.hand_made(objref(sys::NFT_OBJECT_COUNTER, name)),
            Statement::Log {
                prefix,
                level,
                limit,
            } => {
                if let Some(rate) = limit {
                    self.hand_made(limit_expr(rate, false));
                }
                let mut data = Attrs::default();
                if let Some(prefix) = prefix {
                    data = data.strz(sys::NFTA_LOG_PREFIX, prefix);
                }
                if let Some(level) = level {
                    data = data.u32(sys::NFTA_LOG_LEVEL, level.number());
                }
                self.hand_made(Expr::new("log", data));
            }
            Statement::Mark(update) => {
                self.mark_value(*update, || Meta::new(MetaType::Mark));
                self.push(
                    Meta::default()
                        .with_key(MetaType::Mark)
                        .with_sreg(Register::Reg1),
                );
            }
            Statement::CtMark(update) => {
                self.mark_value(*update, || Conntrack::new(ConntrackKey::Mark));
                self.push(Conntrack::default().with_mark_value(Register::Reg1));
            }
            Statement::Dscp { family, value } => self.dscp(*family, *value),
            Statement::Notrack => self.hand_made(Expr::without_data("notrack")),
            // As nft: a one-byte 1 in a register, and meta sets the flag
            // from it (rustables has no nftrace key).
            Statement::Nftrace => {
                self.push(Immediate::new_data(vec![1], Register::Reg1));
                self.hand_made(Expr::new(
                    "meta",
                    Attrs::default()
                        .u32(sys::NFTA_META_KEY, libc::NFT_META_NFTRACE as u32)
                        .u32(sys::NFTA_META_SREG, 1),
                ));
            }
            Statement::CtHelper(name) => self.hand_made(objref(sys::NFT_OBJECT_CT_HELPER, name)),
            // No protocol check of its own, as nft has it: the kernel
            // writes TCP options of TCP packets only.
            Statement::Mss(clamp) => {
                match clamp {
                    MssClamp::PathMtu => {
                        self.hand_made(Expr::new(
                            "rt",
                            Attrs::default()
                                .u32(sys::NFTA_RT_KEY, sys::NFT_RT_TCPMSS)
                                .u32(sys::NFTA_RT_DREG, 1),
                        ));
                        // rt gives the MSS in host order; the option holds
                        // it in network order.
                        self.hand_made(super::fields::hton(1, MSS_LEN));
                    }
                    MssClamp::Size(size) => self.push(Immediate::new_data(
                        size.to_be_bytes().to_vec(),
                        Register::Reg1,
                    )),
                }
                self.hand_made(Expr::new(
                    "exthdr",
                    Attrs::default()
                        .u32(sys::NFTA_EXTHDR_OP, sys::NFT_EXTHDR_OP_TCPOPT)
                        .u8(sys::NFTA_EXTHDR_TYPE, TCPOPT_MAXSEG)
                        .u32(sys::NFTA_EXTHDR_OFFSET, MSS_OFFSET)
                        .u32(sys::NFTA_EXTHDR_LEN, MSS_LEN)
                        .u32(sys::NFTA_EXTHDR_SREG, 1),
                ));
            }
            Statement::Offload(name) => self.hand_made(Expr::new(
                "flow_offload",
                Attrs::default().strz(sys::NFTA_FLOW_TABLE_NAME, name),
            )),
        }
        Ok(())
    }

    /// The new mark into reg 1: the value, or the old mark (`load`) under
    /// the mask and xor.
    fn mark_value<L: Into<rustables::expr::RawExpression>>(
        &mut self,
        update: MarkUpdate,
        load: impl FnOnce() -> L,
    ) {
        match update {
            MarkUpdate::Set(v) => self.push(Immediate::new_data(
                v.to_ne_bytes().to_vec(),
                Register::Reg1,
            )),
            MarkUpdate::Bitwise { mask, xor } => {
                self.push(load());
                self.push(
                    Bitwise::new(mask.to_ne_bytes(), xor.to_ne_bytes())
                        .expect("mask and xor have the same length"),
                );
            }
        }
    }

    /// The first two bytes of the IP header, loaded, changed in the DSCP
    /// bits only, and written back (IPv4's header checksum updated).
    fn dscp(&mut self, family: Family, value: u8) {
        self.require_nfproto(family);
        // IPv4: version and IHL, then DSCP (6 bits) and ECN (2 bits).
        // IPv6: version (4 bits), traffic class (DSCP, ECN), flow label.
        let (keep, set) = match family {
            Family::V4 => ([0xff, 0x03], [0, value << 2]),
            Family::V6 => ([0xf0, 0x3f], [value >> 2, (value & 0x03) << 6]),
        };
        self.push(
            Payload::default()
                .with_dreg(Register::Reg1)
                .with_base(libc::NFT_PAYLOAD_NETWORK_HEADER as u32)
                .with_offset(0u32)
                .with_len(2u32),
        );
        self.push(Bitwise::new(keep, set).expect("mask and xor have the same length"));
        let mut write = Attrs::default()
            .u32(sys::NFTA_PAYLOAD_SREG, 1)
            .u32(sys::NFTA_PAYLOAD_BASE, sys::NFT_PAYLOAD_NETWORK_HEADER)
            .u32(sys::NFTA_PAYLOAD_OFFSET, 0)
            .u32(sys::NFTA_PAYLOAD_LEN, 2);
        if family == Family::V4 {
            /// Offset of the IPv4 header checksum.
            const IPV4_CSUM_OFFSET: u32 = 10;
            write = write
                .u32(sys::NFTA_PAYLOAD_CSUM_TYPE, sys::NFT_PAYLOAD_CSUM_INET)
                .u32(sys::NFTA_PAYLOAD_CSUM_OFFSET, IPV4_CSUM_OFFSET);
        }
        self.hand_made(Expr::new("payload", write));
    }

    pub fn add_action(&mut self, action: &Action) {
        let verdict = match action {
            Action::Accept => VerdictKind::Accept,
            Action::Drop => VerdictKind::Drop,
            Action::Return => VerdictKind::Return,
            Action::Continue => VerdictKind::Continue,
            Action::Jump(chain) => VerdictKind::Jump {
                chain: chain.clone(),
            },
            Action::Goto(chain) => VerdictKind::Goto {
                chain: chain.clone(),
            },
            Action::Reject(with) => return self.hand_made(reject(*with)),
            Action::Dnat(target) => return self.nat(sys::NFT_NAT_DNAT, target),
            Action::Snat(target) => return self.nat(sys::NFT_NAT_SNAT, target),
            Action::Masquerade(ports) => {
                let regs = self.ports(*ports, 0);
                let mut data = Attrs::default();
                if let Some(flags) = range_flags(*ports, NatFlags::default()) {
                    data = data.u32(sys::NFTA_MASQ_FLAGS, flags);
                }
                data = with_port_regs(
                    data,
                    regs,
                    sys::NFTA_MASQ_REG_PROTO_MIN,
                    sys::NFTA_MASQ_REG_PROTO_MAX,
                );
                return self.hand_made(Expr::new("masq", data));
            }
            Action::Redirect(ports) => {
                let regs = self.ports(*ports, 0);
                let mut data = with_port_regs(
                    Attrs::default(),
                    regs,
                    sys::NFTA_REDIR_REG_PROTO_MIN,
                    sys::NFTA_REDIR_REG_PROTO_MAX,
                );
                if let Some(flags) = range_flags(*ports, NatFlags::default()) {
                    data = data.u32(sys::NFTA_REDIR_FLAGS, flags);
                }
                return self.hand_made(Expr::new("redir", data));
            }
            Action::Vmap(_) | Action::DnatMap(_) | Action::SnatMap(_) => {
                unreachable!("map actions are encoded by add_map_action")
            }
        };
        self.push(Immediate::new_verdict(verdict));
    }

    /// The ports into the registers after the first `used`: (first's,
    /// last's when a range).
    fn ports(&mut self, ports: Option<PortRange>, used: usize) -> Option<(u32, Option<u32>)> {
        let ports = ports?;
        let first = REGS[used];
        self.push(Immediate::new_data(
            ports.first.to_be_bytes().to_vec(),
            first,
        ));
        let last = (ports.last != ports.first).then(|| {
            let last = REGS[used + 1];
            self.push(Immediate::new_data(ports.last.to_be_bytes().to_vec(), last));
            reg_number(last)
        });
        Some((reg_number(first), last))
    }

    /// The addresses, then the ports, into registers from reg 1; then the
    /// nat expression reading them.
    fn nat(&mut self, kind: u32, target: &NatTarget) {
        let family = match target.address {
            IpAddr::V4(_) => libc::NFPROTO_IPV4,
            IpAddr::V6(_) => libc::NFPROTO_IPV6,
        };
        self.push(Immediate::new_data(
            ip_to_vec(target.address),
            Register::Reg1,
        ));
        let mut data = Attrs::default()
            .u32(sys::NFTA_NAT_TYPE, kind)
            .u32(sys::NFTA_NAT_FAMILY, family as u32)
            .u32(sys::NFTA_NAT_REG_ADDR_MIN, 1);
        let mut used = 1;
        if let Some(last) = target.last_address {
            self.push(Immediate::new_data(ip_to_vec(last), Register::Reg2));
            data = data.u32(sys::NFTA_NAT_REG_ADDR_MAX, 2);
            used = 2;
        }
        let regs = self.ports(target.ports, used);
        data = with_port_regs(
            data,
            regs,
            sys::NFTA_NAT_REG_PROTO_MIN,
            sys::NFTA_NAT_REG_PROTO_MAX,
        );
        if let Some(flags) = range_flags(target.ports, target.flags) {
            data = data.u32(sys::NFTA_NAT_FLAGS, flags);
        }
        self.hand_made(Expr::new("nat", data));
    }
}

fn with_port_regs(data: Attrs, regs: Option<(u32, Option<u32>)>, min: u16, max: u16) -> Attrs {
    let Some((first, last)) = regs else {
        return data;
    };
    let data = data.u32(min, first);
    match last {
        Some(last) => data.u32(max, last),
        None => data,
    }
}

/// The NF_NAT_RANGE_* flags nft sends: ports given, and the options; none
/// when there is neither.
fn range_flags(ports: Option<PortRange>, options: NatFlags) -> Option<u32> {
    let flags = [
        (ports.is_some(), nat_flags::PROTO_SPECIFIED),
        (options.random, nat_flags::PROTO_RANDOM),
        (options.persistent, nat_flags::PERSISTENT),
        (options.fully_random, nat_flags::PROTO_RANDOM_FULLY),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .fold(0, |acc, (_, bit)| acc | bit);
    (flags != 0).then_some(flags)
}

pub(super) fn objref(object_type: u32, name: &str) -> Expr {
    Expr::new(
        "objref",
        Attrs::default()
            .u32(sys::NFTA_OBJREF_IMM_TYPE, object_type)
            .str(sys::NFTA_OBJREF_IMM_NAME, name),
    )
}

/// A limit expression, as nft sends one: a byte rate's burst only when it
/// has one; with `over`, matching the packets above the rate.
pub(super) fn limit_expr(rate: &Rate, over: bool) -> Expr {
    let mut data = Attrs::default()
        .u64(sys::NFTA_LIMIT_RATE, rate.amount)
        .u64(sys::NFTA_LIMIT_UNIT, rate.per.seconds());
    if rate.burst != 0 {
        data = data.u32(sys::NFTA_LIMIT_BURST, rate.burst);
    }
    let kind = if rate.bytes {
        sys::NFT_LIMIT_PKT_BYTES
    } else {
        sys::NFT_LIMIT_PKTS
    };
    Expr::new(
        "limit",
        data.u32(sys::NFTA_LIMIT_TYPE, kind).u32(
            sys::NFTA_LIMIT_FLAGS,
            if over { sys::NFT_LIMIT_F_INV } else { 0 },
        ),
    )
}

fn reject(with: RejectWith) -> Expr {
    let (kind, code) = match with {
        RejectWith::TcpReset => (sys::NFT_REJECT_TCP_RST, 0),
        RejectWith::Icmp(c) => (sys::NFT_REJECT_ICMP_UNREACH, c.code()),
        RejectWith::Icmpv6(c) => (sys::NFT_REJECT_ICMP_UNREACH, c.code()),
        RejectWith::Icmpx(c) => (sys::NFT_REJECT_ICMPX_UNREACH, c.code()),
    };
    Expr::new(
        "reject",
        Attrs::default()
            .u32(sys::NFTA_REJECT_TYPE, kind)
            .u8(sys::NFTA_REJECT_ICMP_CODE, code),
    )
}

#[cfg(test)]
#[path = "actions_tests.rs"]
mod tests;
