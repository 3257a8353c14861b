//! A rule's statements and its action as the expressions nft emits.

use std::net::IpAddr;

use rustables::ProtocolFamily;
use rustables::data_type::ip_to_vec;
use rustables::expr::{
    Counter, IcmpCode, Immediate, Log, Masquerade, Nat, NatType, Register, Reject, RejectType,
    VerdictKind,
};

use super::rule::RuleBuilder;
use crate::ir::{Action, NatTarget, Statement};

impl RuleBuilder {
    pub fn add_statement(&mut self, statement: &Statement) -> Result<(), String> {
        match statement {
            Statement::Counter => self.push(Counter::default()),
            Statement::Log { prefix } => {
                self.push(Log::new(None, prefix.as_deref()).map_err(|e| e.to_string())?)
            }
        }
        Ok(())
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
            Action::Reject { tcp: true } => {
                return self.push(Reject::default().with_type(RejectType::TcpRst));
            }
            Action::Reject { tcp: false } => {
                let reject = Reject::default()
                    .with_type(RejectType::IcmpxUnreach)
                    .with_icmp_code(IcmpCode::PortUnreach);
                return self.push(reject);
            }
            Action::Dnat(target) => return self.nat(NatType::DNat, target),
            Action::Snat(target) => return self.nat(NatType::SNat, target),
            Action::Masquerade => return self.push(Masquerade::default()),
            Action::Vmap(_) | Action::DnatMap(_) | Action::SnatMap(_) => {
                unreachable!("map actions are encoded by add_map_action")
            }
        };
        self.push(Immediate::new_verdict(verdict));
    }

    /// Address into reg 1, port (big-endian) into reg 2, then the nat
    /// expression reading them.
    fn nat(&mut self, kind: NatType, target: &NatTarget) {
        let family = match target.address {
            IpAddr::V4(_) => ProtocolFamily::Ipv4,
            IpAddr::V6(_) => ProtocolFamily::Ipv6,
        };
        self.push(Immediate::new_data(
            ip_to_vec(target.address),
            Register::Reg1,
        ));
        let mut nat = Nat::default()
            .with_nat_type(kind)
            .with_family(family)
            .with_ip_register(Register::Reg1);
        if let Some(port) = target.port {
            self.push(Immediate::new_data(
                port.to_be_bytes().to_vec(),
                Register::Reg2,
            ));
            nat.set_port_register(Register::Reg2);
        }
        self.push(nat);
    }
}
