//! The IR's stateful objects and flowtables: the counters, limits and
//! conntrack helpers a policy declares for its rules to name, and the
//! flowtables its rules offload connections to, each with the nft text of
//! its definition.

use super::{Rate, Transport};

/// What a stateful object is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Object {
    /// A counter that rules count in (`counter name "c"`). Its packets and
    /// bytes are the kernel's, never part of the definition.
    Counter,
    /// A rate that rules share (`limit name "l"`): what one rule takes
    /// from it, the others cannot. `over` matches the packets above it.
    Limit { rate: Rate, over: bool },
    /// A conntrack helper that rules attach (`ct helper set "h"`).
    CtHelper(CtHelper),
}

/// A conntrack helper object: the kernel's helper `helper` for `protocol`,
/// for both IPv4 and IPv6 (`l3proto inet`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct CtHelper {
    /// The kernel's name of the helper: "ftp", "sip", ...
    pub helper: String,
    pub protocol: Transport,
}

/// The kernel's object types (NFT_OBJECT_*).
pub const OBJECT_COUNTER: u32 = 1;
pub const OBJECT_CT_HELPER: u32 = 3;
pub const OBJECT_LIMIT: u32 = 4;

impl Object {
    /// The kernel's type of the object (NFT_OBJECT_*): with the name, its
    /// identity in a table.
    pub fn type_id(&self) -> u32 {
        match self {
            Object::Counter => OBJECT_COUNTER,
            Object::Limit { .. } => OBJECT_LIMIT,
            Object::CtHelper(_) => OBJECT_CT_HELPER,
        }
    }

    /// The lines of its definition as nft lists them between the braces
    /// (none for a counter: its numbers are the kernel's).
    pub fn definition(&self) -> Vec<String> {
        match self {
            Object::Counter => Vec::new(),
            Object::Limit { rate, over } => {
                vec![format!("rate {}{rate}", if *over { "over " } else { "" })]
            }
            Object::CtHelper(h) => vec![
                format!("type \"{}\" protocol {}", h.helper, h.protocol.as_str()),
                "l3proto inet".into(),
            ],
        }
    }
}

/// nft's keyword of an object type, e.g. `ct helper`; the runtime deletes
/// objects of any type from its table, so every type has a name here.
pub fn object_keyword(type_id: u32) -> String {
    match type_id {
        OBJECT_COUNTER => "counter".into(),
        2 => "quota".into(),
        OBJECT_CT_HELPER => "ct helper".into(),
        OBJECT_LIMIT => "limit".into(),
        7 => "ct timeout".into(),
        8 => "secmark".into(),
        9 => "ct expectation".into(),
        10 => "synproxy".into(),
        other => format!("object of type {other}"),
    }
}

/// A policy's object, by the name its rules use.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NamedObject {
    pub name: String,
    pub object: Object,
}

/// A flowtable on the ingress hook of its devices: connections offloaded
/// to it (`flow add @ft`) skip the firewall's hooks from then on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Flowtable {
    pub priority: i32,
    /// Sorted, without duplicates; at least one.
    pub devices: Vec<String>,
    /// Offload to the network card too (`flags offload`).
    pub hardware_offload: bool,
    /// Count the packets of offloaded flows (`counter`).
    pub counter: bool,
}

/// The kernel's flowtable flags (NFT_FLOWTABLE_*).
pub const FLOWTABLE_HW_OFFLOAD: u32 = 1;
pub const FLOWTABLE_COUNTER: u32 = 2;

impl Flowtable {
    pub fn flags(&self) -> u32 {
        let mut flags = 0;
        if self.hardware_offload {
            flags |= FLOWTABLE_HW_OFFLOAD;
        }
        if self.counter {
            flags |= FLOWTABLE_COUNTER;
        }
        flags
    }

    /// The priority as nft lists a flowtable's: the netdev family knows
    /// only the standard priority `filter` (0), so `filter`, `filter + 5`,
    /// or the number.
    pub fn priority_text(&self) -> String {
        match self.priority {
            0 => "filter".into(),
            p @ 1..=10 => format!("filter + {p}"),
            p @ -10..=-1 => format!("filter - {}", -p),
            p => p.to_string(),
        }
    }

    /// The lines of its definition as nft lists them between the braces.
    pub fn definition(&self) -> Vec<String> {
        let mut lines = vec![format!("hook ingress priority {}", self.priority_text())];
        lines.push(format!("devices = {{ {} }}", self.devices.join(", ")));
        if self.hardware_offload {
            lines.push("flags offload".into());
        }
        if self.counter {
            lines.push("counter".into());
        }
        lines
    }
}

/// A policy's flowtable, by the name its rules use.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NamedFlowtable {
    pub name: String,
    pub flowtable: Flowtable,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As nft 1.0.6 lists them (`nft list ruleset`; a flowtable as its
    /// source prints one: this kernel has no flowtables).
    #[test]
    fn definitions_read_as_nft_lists_them() {
        assert!(Object::Counter.definition().is_empty());
        let ftp = Object::CtHelper(CtHelper {
            helper: "ftp".into(),
            protocol: Transport::Tcp,
        });
        assert_eq!(
            ftp.definition(),
            ["type \"ftp\" protocol tcp", "l3proto inet"]
        );
        let limit = |amount, bytes, per, burst, over| {
            Object::Limit {
                rate: Rate {
                    amount,
                    bytes,
                    per,
                    burst,
                },
                over,
            }
            .definition()
        };
        use super::super::TimeUnit::{Minute, Second, Week};
        assert_eq!(limit(10, false, Second, 5, false), ["rate 10/second"]);
        assert_eq!(
            limit(10, false, Minute, 20, true),
            ["rate over 10/minute burst 20 packets"]
        );
        assert_eq!(
            limit(100 << 10, true, Second, 20 << 10, true),
            ["rate over 100 kbytes/second burst 20 kbytes"]
        );
        assert_eq!(limit(1000, true, Week, 0, false), ["rate 1000 bytes/week"]);
        let ft = Flowtable {
            priority: 0,
            devices: vec!["lan0".into(), "wan0".into()],
            hardware_offload: true,
            counter: true,
        };
        assert_eq!(
            ft.definition(),
            [
                "hook ingress priority filter",
                "devices = { lan0, wan0 }",
                "flags offload",
                "counter"
            ]
        );
    }

    /// nft's prio2str for the netdev family: within 10 of a standard
    /// priority other than `filter` it prints the number.
    #[test]
    fn flowtable_priorities_read_as_nft_lists_them() {
        let text = |priority| {
            Flowtable {
                priority,
                devices: vec!["lan0".into()],
                hardware_offload: false,
                counter: false,
            }
            .priority_text()
        };
        for (p, listed) in [
            (0, "filter"),
            (5, "filter + 5"),
            (10, "filter + 10"),
            (-10, "filter - 10"),
            (11, "11"),
            (-150, "-150"),
            (50, "50"),
            (i32::MIN, "-2147483648"),
        ] {
            assert_eq!(text(p), listed);
        }
    }
}
