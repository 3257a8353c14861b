//! The conntrack helpers a zone assigns (fw4's helper list): each kernel
//! helper with its protocol, well-known port and family. A zone with
//! `auto_helper` (and no masquerade) or a `helper` list assigns them in
//! its `helper_Z` chain; only those the kernel has are declared and used.

use wasmwall_sdk::{IpFamily, Transport};

/// One conntrack helper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Helper {
    /// The kernel's name of it (`ct helper set "ftp"`).
    pub name: &'static str,
    /// What it follows, for the rule's comment.
    pub description: &'static str,
    /// None for both families.
    pub family: Option<IpFamily>,
    pub proto: Transport,
    pub port: u16,
}

impl Helper {
    /// The name of its object here: object names cannot hold the '.' of
    /// `Q.931`.
    pub fn object(&self) -> String {
        self.name.replace('.', "_")
    }
}

const fn helper(
    name: &'static str,
    description: &'static str,
    family: Option<IpFamily>,
    proto: Transport,
    port: u16,
) -> Helper {
    Helper {
        name,
        description,
        family,
        proto,
        port,
    }
}

const V4: Option<IpFamily> = Some(IpFamily::V4);

/// Every helper fw4 knows, in its order.
pub const HELPERS: [Helper; 12] = [
    helper("amanda", "Amanda backups", None, Transport::Udp, 10080),
    helper("ftp", "FTP data connections", None, Transport::Tcp, 21),
    helper("RAS", "H.323 RAS", None, Transport::Udp, 1719),
    helper("Q.931", "H.323 Q.931 calls", None, Transport::Tcp, 1720),
    helper("irc", "IRC DCC transfers", V4, Transport::Tcp, 6667),
    helper(
        "netbios-ns",
        "NetBIOS name queries",
        V4,
        Transport::Udp,
        137,
    ),
    helper("pptp", "PPTP tunnels", V4, Transport::Tcp, 1723),
    helper("sane", "SANE scanners", None, Transport::Tcp, 6566),
    helper("sip", "SIP calls", None, Transport::Udp, 5060),
    helper("snmp", "SNMP queries", V4, Transport::Udp, 161),
    helper("tftp", "TFTP transfers", None, Transport::Udp, 69),
    helper("rtsp", "RTSP streams", V4, Transport::Tcp, 554),
];

/// The helper of this kernel name.
pub fn by_name(name: &str) -> Option<&'static Helper> {
    HELPERS.iter().find(|h| h.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_objects() {
        assert_eq!(by_name("Q.931").unwrap().object(), "Q_931");
        assert_eq!(by_name("ftp").unwrap().port, 21);
        assert!(by_name("bittorrent").is_none());
    }
}
