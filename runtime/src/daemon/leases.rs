//! The DHCP and DHCPv6 leases the daemon knows, from its control socket (a
//! DHCP server's hook, `wasmwall event lease`) and from dnsmasq's lease
//! file, read line by line from the reader it is given. Pure otherwise: the
//! time is passed in.

use std::collections::BTreeMap;
use std::io::{self, BufRead};
use std::net::IpAddr;

use ipnetwork::IpNetwork;

use serde::{Deserialize, Serialize};

use crate::fields;
use crate::world::{Dhcpv6Lease, Event, Interface, Lease};

/// What a DHCP server says happened to a lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseAction {
    /// Handed out.
    Add,
    /// Renewed (dnsmasq says "old"): same address, new expiry or host name.
    Renew,
    /// Released or expired.
    Del,
}

impl std::str::FromStr for LeaseAction {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "add" => Ok(LeaseAction::Add),
            "old" | "renew" => Ok(LeaseAction::Renew),
            "del" => Ok(LeaseAction::Del),
            other => Err(format!(
                "lease action {other:?} is not add, old (or renew) or del"
            )),
        }
    }
}

/// A DHCP lease of either family. Kept leases are written as a JSON list
/// of these (a DHCPv4 one has a `mac`, a DHCPv6 one a `duid`), which reads
/// the DHCPv4-only lists of earlier versions too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AnyLease {
    V4(Lease),
    V6(Dhcpv6Lease),
}

impl AnyLease {
    pub fn ip(&self) -> &str {
        match self {
            AnyLease::V4(l) => &l.ip,
            AnyLease::V6(l) => &l.ip,
        }
    }

    pub fn iface(&self) -> &str {
        match self {
            AnyLease::V4(l) => &l.iface,
            AnyLease::V6(l) => &l.iface,
        }
    }

    pub fn set_iface(&mut self, iface: String) {
        match self {
            AnyLease::V4(l) => l.iface = iface,
            AnyLease::V6(l) => l.iface = iface,
        }
    }

    pub fn expires(&self) -> Option<u64> {
        match self {
            AnyLease::V4(l) => l.expires,
            AnyLease::V6(l) => l.expires,
        }
    }

    /// Checks every field (see [`Lease::checked`], [`Dhcpv6Lease::checked`]).
    pub fn checked(self) -> Result<AnyLease, String> {
        match self {
            AnyLease::V4(l) => l.checked().map(AnyLease::V4),
            AnyLease::V6(l) => l.checked().map(AnyLease::V6),
        }
    }

    /// Whether `other` is the same client's lease: the same hardware
    /// address, or the same DUID and identity association.
    fn same_client(&self, other: &AnyLease) -> bool {
        match (self, other) {
            (AnyLease::V4(a), AnyLease::V4(b)) => a.mac == b.mac,
            (AnyLease::V6(a), AnyLease::V6(b)) => a.duid == b.duid && a.iaid == b.iaid,
            _ => false,
        }
    }

    fn added(self) -> Event {
        match self {
            AnyLease::V4(l) => Event::LeaseAdded(l),
            AnyLease::V6(l) => Event::Dhcpv6LeaseAdded(l),
        }
    }

    fn renewed(self) -> Event {
        match self {
            AnyLease::V4(l) => Event::LeaseRenewed(l),
            AnyLease::V6(l) => Event::Dhcpv6LeaseRenewed(l),
        }
    }

    fn expired(self) -> Event {
        match self {
            AnyLease::V4(l) => Event::LeaseExpired(l),
            AnyLease::V6(l) => Event::Dhcpv6LeaseExpired(l),
        }
    }
}

/// The leases of both families, by address, bounded in number together.
#[derive(Debug, Clone)]
pub struct Leases {
    by_ip: BTreeMap<IpAddr, AnyLease>,
    /// The lease file as last read, to tell what changed in it.
    from_file: BTreeMap<IpAddr, AnyLease>,
    max: usize,
}

impl Leases {
    pub fn new(max: usize) -> Self {
        Leases {
            by_ip: BTreeMap::new(),
            from_file: BTreeMap::new(),
            max,
        }
    }

    pub fn len(&self) -> usize {
        self.by_ip.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_ip.is_empty()
    }

    /// The current DHCPv4 leases, sorted by address (as the policies see
    /// them).
    pub fn list(&self) -> Vec<Lease> {
        self.by_ip
            .values()
            .filter_map(|l| match l {
                AnyLease::V4(l) => Some(l.clone()),
                AnyLease::V6(_) => None,
            })
            .collect()
    }

    /// The current DHCPv6 leases, sorted by address.
    pub fn list6(&self) -> Vec<Dhcpv6Lease> {
        self.by_ip
            .values()
            .filter_map(|l| match l {
                AnyLease::V6(l) => Some(l.clone()),
                AnyLease::V4(_) => None,
            })
            .collect()
    }

    /// Every lease, both families, sorted by address (IPv4 first).
    pub fn all(&self) -> Vec<AnyLease> {
        self.by_ip.values().cloned().collect()
    }

    /// Applies one change (the lease's fields already checked). Returns the
    /// event it makes, or None when nothing changed. A lease whose expiry has
    /// passed is not added (and removes the one it names).
    pub fn apply(
        &mut self,
        action: LeaseAction,
        lease: impl Into<AnyLease>,
        now: u64,
    ) -> Result<Option<Event>, String> {
        let lease = lease.into();
        let ip: IpAddr = fields::ip(lease.ip())?;
        let expired = lease.expires().is_some_and(|e| e <= now);
        if action == LeaseAction::Del || expired {
            return Ok(self.by_ip.remove(&ip).map(AnyLease::expired));
        }
        match self.by_ip.get(&ip) {
            Some(old) if *old == lease => Ok(None),
            Some(old) => {
                // The same device keeping its address is a renewal; another
                // device on that address is a new lease.
                let event = if old.same_client(&lease) {
                    lease.clone().renewed()
                } else {
                    lease.clone().added()
                };
                self.by_ip.insert(ip, lease);
                Ok(Some(event))
            }
            None if self.by_ip.len() >= self.max => Err(format!(
                "lease for {} refused: the daemon holds its maximum of {} leases, both families together (config `leases.max`)",
                lease.ip(),
                self.max
            )),
            None => {
                self.by_ip.insert(ip, lease.clone());
                Ok(Some(lease.added()))
            }
        }
    }

    /// Removes every lease whose expiry is at or before `now`.
    pub fn expire(&mut self, now: u64) -> Vec<Event> {
        let gone: Vec<IpAddr> = self
            .by_ip
            .iter()
            .filter(|(_, l)| l.expires().is_some_and(|e| e <= now))
            .map(|(ip, _)| *ip)
            .collect();
        gone.iter()
            .filter_map(|ip| self.by_ip.remove(ip))
            .map(AnyLease::expired)
            .collect()
    }

    /// The earliest expiry among the leases.
    pub fn next_expiry(&self) -> Option<u64> {
        self.by_ip.values().filter_map(AnyLease::expires).min()
    }

    /// Takes in the lease file's content as now read: what appeared or
    /// changed in it is added, what left it is removed (if the lease is
    /// still the one the file had).
    pub fn sync_file(&mut self, leases: Vec<AnyLease>, now: u64) -> (Vec<Event>, Problems) {
        let mut events = Vec::new();
        let mut problems = Problems::default();
        let mut next = BTreeMap::new();
        for lease in leases {
            if let Ok(ip) = lease.ip().parse::<IpAddr>() {
                next.insert(ip, lease);
            }
        }
        let previous = std::mem::take(&mut self.from_file);
        for (ip, old) in &previous {
            if !next.contains_key(ip) && self.by_ip.get(ip) == Some(old) {
                events.extend(self.by_ip.remove(ip).map(AnyLease::expired));
            }
        }
        for (ip, lease) in &next {
            if previous.get(ip) == Some(lease) && self.by_ip.get(ip) == Some(lease) {
                continue;
            }
            match self.apply(LeaseAction::Add, lease.clone(), now) {
                Ok(event) => events.extend(event),
                Err(e) => problems.push(|| e),
            }
        }
        self.from_file = next;
        (events, problems)
    }
}

/// The longest line of dnsmasq's lease file that is read (a lease line is
/// under 400 bytes); a longer one is skipped and never shown.
pub const LINE_MAX: usize = 1024;
/// Lines of the lease file read at most; the rest is skipped, counted.
pub const LINES_MAX: usize = 2_000_000;
/// Problems of one read of the lease file that are named; the others are
/// counted.
pub const PROBLEMS_SHOWN: usize = 5;
/// Bytes of a line's field quoted in a problem.
const QUOTED_MAX: usize = 64;

/// What one read of the lease file found wrong: the first few problems,
/// each naming its line, and how many in all.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Problems {
    shown: Vec<String>,
    count: usize,
}

impl Problems {
    /// Counts a problem; `describe` is called only for one that is shown.
    pub fn push(&mut self, describe: impl FnOnce() -> String) {
        if self.shown.len() < PROBLEMS_SHOWN {
            self.shown.push(describe());
        }
        self.count += 1;
    }

    pub fn count(&self) -> usize {
        self.count
    }

    pub fn extend(&mut self, other: Problems) {
        let hidden = other.count - other.shown.len();
        for p in other.shown {
            self.push(|| p);
        }
        self.count += hidden;
    }

    /// The problems shown, then one line saying how many were not.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = self.shown.clone();
        if self.count > self.shown.len() {
            lines.push(format!(
                "{} more problems not shown ({} in all)",
                self.count - self.shown.len(),
                self.count
            ));
        }
        lines
    }
}

impl From<Lease> for AnyLease {
    fn from(l: Lease) -> AnyLease {
        AnyLease::V4(l)
    }
}

impl From<Dhcpv6Lease> for AnyLease {
    fn from(l: Dhcpv6Lease) -> AnyLease {
        AnyLease::V6(l)
    }
}

/// What one read of the lease file gave.
#[derive(Debug, Default)]
pub struct LeaseFile {
    pub leases: Vec<AnyLease>,
    /// Lines that could not be used.
    pub problems: Problems,
}

/// `text` quoted, cut to [`QUOTED_MAX`] bytes.
fn quoted(text: &str) -> String {
    let mut text = text.to_string();
    if crate::text::cut(&mut text, QUOTED_MAX) {
        format!("{text:?}...")
    } else {
        format!("{text:?}")
    }
}

/// A problem that quotes a field, cut to twice [`QUOTED_MAX`] bytes.
fn cut(mut problem: String) -> String {
    if crate::text::cut(&mut problem, 2 * QUOTED_MAX) {
        problem.push_str("...");
    }
    problem
}

/// Reads the next line of `reader` into `line` without its newline, keeping
/// at most `max` bytes of it (the rest of a longer line is read past, never
/// held). Returns None at the end, else whether the line was whole.
fn next_line(
    reader: &mut impl BufRead,
    line: &mut Vec<u8>,
    max: usize,
) -> io::Result<Option<bool>> {
    line.clear();
    let mut whole = true;
    let mut started = false;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(started.then_some(whole));
        }
        started = true;
        let end = buf.iter().position(|b| *b == b'\n');
        let piece = &buf[..end.unwrap_or(buf.len())];
        let room = (max + 1).saturating_sub(line.len());
        line.extend_from_slice(&piece[..piece.len().min(room)]);
        if line.len() > max {
            whole = false;
            line.truncate(max);
        }
        let used = end.map_or(buf.len(), |e| e + 1);
        reader.consume(used);
        if end.is_some() {
            return Ok(Some(whole));
        }
    }
}

/// Parses dnsmasq's lease file, line by line: one line per DHCPv4 lease,
/// `EXPIRY MAC IP HOSTNAME CLIENT-ID`, then, after a line `duid
/// SERVER-DUID`, one per DHCPv6 lease, `EXPIRY IAID IP HOSTNAME
/// CLIENT-DUID` (an IAID written `T...` is a temporary address); `*` for
/// no host name, an expiry of 0 for an infinite lease. The file does not
/// name the interface; it is the one with a prefix holding the address. A
/// line that cannot be used (too long, not UTF-8, a bad field) is skipped
/// and counted, and the others are still taken; at most `max_leases`
/// leases and [`LINES_MAX`] lines are read.
pub fn parse_dnsmasq(
    mut reader: impl BufRead,
    interfaces: &[Interface],
    max_leases: usize,
) -> io::Result<LeaseFile> {
    let mut file = LeaseFile::default();
    let problems = &mut file.problems;
    let mut bytes = Vec::new();
    let mut n = 0;
    let mut v6 = false;
    while let Some(whole) = next_line(&mut reader, &mut bytes, LINE_MAX)? {
        n += 1;
        if n > LINES_MAX {
            problems.push(|| format!("lines after line {LINES_MAX} are not read"));
            break;
        }
        let at = |p: String| format!("line {n}: {p}");
        if !whole {
            problems.push(|| at(format!("longer than {LINE_MAX} bytes; skipped")));
            continue;
        }
        let Ok(line) = std::str::from_utf8(&bytes) else {
            problems.push(|| at("not UTF-8; skipped".into()));
            continue;
        };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if line.starts_with("duid ") {
            v6 = true;
            continue;
        }
        let words: Vec<&str> = line.split_ascii_whitespace().collect();
        let form = if v6 {
            "EXPIRY IAID IP HOSTNAME CLIENT-DUID"
        } else {
            "EXPIRY MAC IP HOSTNAME CLIENT-ID"
        };
        let [expiry, id, ip, hostname, rest @ ..] = words.as_slice() else {
            problems.push(|| at(format!("{} is not {form}", quoted(line))));
            continue;
        };
        let Ok(expiry) = expiry.parse::<u64>() else {
            problems.push(|| at(format!("expiry {} is not a number", quoted(expiry))));
            continue;
        };
        let addr = match fields::ip(ip) {
            Ok(a) => a,
            Err(e) => {
                problems.push(|| at(cut(e)));
                continue;
            }
        };
        let Some(iface) = interface_holding(interfaces, addr) else {
            problems.push(|| {
                at(format!(
                    "no interface has a prefix holding {ip}; lease ignored until one does"
                ))
            });
            continue;
        };
        if file.leases.len() >= max_leases {
            problems.push(|| {
                at(format!(
                    "more than {max_leases} leases in the file (`leases.max`); skipped"
                ))
            });
            continue;
        }
        let hostname = (*hostname != "*").then(|| hostname.to_string());
        let expires = (expiry != 0).then_some(expiry);
        let lease = if v6 {
            let (temporary, iaid) = match id.strip_prefix('T') {
                Some(iaid) => (true, iaid),
                None => (false, *id),
            };
            let Ok(iaid) = iaid.parse::<u32>() else {
                problems.push(|| at(format!("IAID {} is not a number", quoted(id))));
                continue;
            };
            let Some(duid) = rest.first() else {
                problems.push(|| at(format!("{} has no client DUID", quoted(line))));
                continue;
            };
            AnyLease::V6(Dhcpv6Lease {
                ip: ip.to_string(),
                duid: duid.to_string(),
                iaid,
                temporary,
                hostname,
                mac: None,
                iface,
                expires,
            })
        } else {
            AnyLease::V4(Lease {
                mac: id.to_string(),
                ip: ip.to_string(),
                hostname,
                iface,
                expires,
            })
        };
        match lease.checked() {
            Ok(l) => file.leases.push(l),
            Err(e) => problems.push(|| at(cut(e))),
        }
    }
    Ok(file)
}

/// The interface with an address whose prefix holds `ip`.
pub fn interface_holding(interfaces: &[Interface], ip: IpAddr) -> Option<String> {
    interfaces
        .iter()
        .find(|i| {
            i.addresses.iter().any(|a| {
                a.parse::<IpNetwork>()
                    .is_ok_and(|net| net.prefix() > 0 && net.contains(ip))
            })
        })
        .map(|i| i.name.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(ip: &str, mac: &str, host: Option<&str>, expires: Option<u64>) -> Lease {
        Lease {
            mac: mac.into(),
            ip: ip.into(),
            hostname: host.map(str::to_string),
            iface: "lan0".into(),
            expires,
        }
    }

    const A: &str = "02:00:00:00:00:0a";
    const B: &str = "02:00:00:00:00:0b";

    #[test]
    fn add_renew_del_make_the_right_events() {
        let mut l = Leases::new(10);
        let first = lease("192.168.1.10", A, Some("nas"), Some(1000));
        assert_eq!(
            l.apply(LeaseAction::Add, first.clone(), 0),
            Ok(Some(Event::LeaseAdded(first.clone())))
        );
        assert_eq!(l.apply(LeaseAction::Add, first.clone(), 0), Ok(None));
        let renewed = lease("192.168.1.10", A, Some("nas"), Some(2000));
        assert_eq!(
            l.apply(LeaseAction::Renew, renewed.clone(), 0),
            Ok(Some(Event::LeaseRenewed(renewed.clone())))
        );
        let other = lease("192.168.1.10", B, None, None);
        assert_eq!(
            l.apply(LeaseAction::Add, other.clone(), 0),
            Ok(Some(Event::LeaseAdded(other.clone())))
        );
        assert_eq!(
            l.apply(LeaseAction::Del, other.clone(), 0),
            Ok(Some(Event::LeaseExpired(other)))
        );
        assert_eq!(l.apply(LeaseAction::Del, renewed, 0), Ok(None));
        assert!(l.is_empty());
    }

    fn lease6(ip: &str, duid: &str, iaid: u32) -> Dhcpv6Lease {
        Dhcpv6Lease {
            ip: ip.into(),
            duid: duid.into(),
            iaid,
            temporary: false,
            hostname: None,
            mac: None,
            iface: "lan0".into(),
            expires: None,
        }
    }

    #[test]
    fn dhcpv6_leases_make_their_own_events_and_list() {
        let mut l = Leases::new(3);
        let v4 = lease("192.168.1.10", A, Some("nas"), None);
        let v6 = lease6("fd00::10", "00:04:01:02:03", 1);
        l.apply(LeaseAction::Add, v4.clone(), 0).unwrap();
        assert_eq!(
            l.apply(LeaseAction::Add, v6.clone(), 0),
            Ok(Some(Event::Dhcpv6LeaseAdded(v6.clone())))
        );
        let renewed = Dhcpv6Lease {
            expires: Some(99),
            ..v6.clone()
        };
        assert_eq!(
            l.apply(LeaseAction::Renew, renewed.clone(), 0),
            Ok(Some(Event::Dhcpv6LeaseRenewed(renewed.clone())))
        );
        // Another identity association on that address is a new lease.
        let other_ia = lease6("fd00::10", "00:04:01:02:03", 2);
        assert_eq!(
            l.apply(LeaseAction::Add, other_ia.clone(), 0),
            Ok(Some(Event::Dhcpv6LeaseAdded(other_ia.clone())))
        );
        assert_eq!(l.list(), vec![v4]);
        assert_eq!(l.list6(), vec![other_ia.clone()]);
        // One cap for both families.
        l.apply(LeaseAction::Add, lease6("fd00::11", "00:04:09", 1), 0)
            .unwrap();
        let err = l
            .apply(LeaseAction::Add, lease6("fd00::12", "00:04:09", 2), 0)
            .unwrap_err();
        assert!(err.contains("both families"), "{err}");
        assert_eq!(
            l.apply(LeaseAction::Del, other_ia.clone(), 0),
            Ok(Some(Event::Dhcpv6LeaseExpired(other_ia)))
        );
    }

    #[test]
    fn kept_lease_lists_of_both_forms_are_read() {
        // An earlier version kept DHCPv4 leases only, as a list of them.
        let old = r#"[{"mac":"02:00:00:00:00:0a","ip":"10.0.0.1","hostname":null,"iface":"lan0","expires":null}]"#;
        let kept: Vec<AnyLease> = serde_json::from_str(old).unwrap();
        assert_eq!(kept, vec![AnyLease::V4(lease("10.0.0.1", A, None, None))]);
        let both = vec![
            AnyLease::V4(lease("10.0.0.1", A, None, None)),
            AnyLease::V6(lease6("fd00::1", "00:04:01:02:03", 5)),
        ];
        let text = serde_json::to_string(&both).unwrap();
        assert_eq!(serde_json::from_str::<Vec<AnyLease>>(&text).unwrap(), both);
    }

    #[test]
    fn expiry_is_honoured() {
        let mut l = Leases::new(10);
        let soon = lease("192.168.1.10", A, None, Some(100));
        let later = lease("192.168.1.11", B, None, Some(200));
        let never = lease("192.168.1.12", B, None, None);
        for x in [&soon, &later, &never] {
            l.apply(LeaseAction::Add, x.clone(), 0).unwrap();
        }
        assert_eq!(l.next_expiry(), Some(100));
        assert_eq!(l.expire(99), vec![]);
        assert_eq!(l.expire(100), vec![Event::LeaseExpired(soon)]);
        assert_eq!(l.next_expiry(), Some(200));
        assert_eq!(l.expire(1000), vec![Event::LeaseExpired(later)]);
        assert_eq!(l.next_expiry(), None);
        assert_eq!(l.list(), vec![never]);
        // A lease that arrives already expired is not added.
        let stale = lease("192.168.1.13", A, None, Some(50));
        assert_eq!(l.apply(LeaseAction::Add, stale, 1000), Ok(None));
        assert_eq!(l.len(), 1);
    }

    #[test]
    fn the_number_of_leases_is_bounded() {
        let mut l = Leases::new(2);
        l.apply(LeaseAction::Add, lease("10.0.0.1", A, None, None), 0)
            .unwrap();
        l.apply(LeaseAction::Add, lease("10.0.0.2", A, None, None), 0)
            .unwrap();
        let err = l
            .apply(LeaseAction::Add, lease("10.0.0.3", A, None, None), 0)
            .unwrap_err();
        assert!(err.contains("maximum of 2 leases"), "{err}");
        // Changing a held lease is still possible.
        assert!(
            l.apply(LeaseAction::Renew, lease("10.0.0.2", A, None, Some(9)), 0)
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn leases_are_listed_by_address() {
        let mut l = Leases::new(10);
        for ip in ["192.168.1.20", "192.168.1.3", "10.0.0.1"] {
            l.apply(LeaseAction::Add, lease(ip, A, None, None), 0)
                .unwrap();
        }
        let ips: Vec<String> = l.list().into_iter().map(|l| l.ip).collect();
        assert_eq!(ips, ["10.0.0.1", "192.168.1.3", "192.168.1.20"]);
    }

    fn lan() -> Vec<Interface> {
        vec![
            Interface {
                name: "lo".into(),
                index: 1,
                up: true,
                mac: None,
                addresses: vec!["127.0.0.1/8".into()],
            },
            Interface {
                name: "lan0".into(),
                index: 2,
                up: true,
                mac: None,
                addresses: vec!["192.168.1.1/24".into(), "fd00::1/64".into()],
            },
        ]
    }

    #[test]
    fn parses_dnsmasq_lease_files() {
        let text = "1764000000 02:00:00:00:00:0a 192.168.1.23 nas 01:02:00:00:00:00:0a\n\
                    0 02:00:00:00:00:0b 192.168.1.24 * *\n\
                    12 02:00:00:00:00:0c 10.9.9.9 far *\n\
                    oops\n\
                    duid 00:01:00:01:2c:5f:aa:bb:02:00:00:00:00:01\n\
                    1764000000 1234 fd00::23 v6host 00:03:00:01:02:00:00:00:00:0a\n\
                    0 T99 fd00::24 * 00:04:aa:bb:cc\n\
                    0 x1 fd00::25 * 00:04:aa:bb:cc\n\
                    0 7 fd00::26 *\n\
                    0 8 2001:db8:9::1 * 00:04:aa:bb:cc\n";
        let file = parse_dnsmasq(text.as_bytes(), &lan(), 10).unwrap();
        assert_eq!(
            file.leases,
            vec![
                AnyLease::V4(lease("192.168.1.23", A, Some("nas"), Some(1_764_000_000))),
                AnyLease::V4(lease("192.168.1.24", B, None, None)),
                AnyLease::V6(Dhcpv6Lease {
                    ip: "fd00::23".into(),
                    duid: "00:03:00:01:02:00:00:00:00:0a".into(),
                    iaid: 1234,
                    temporary: false,
                    hostname: Some("v6host".into()),
                    // From the DUID-LL.
                    mac: Some(A.into()),
                    iface: "lan0".into(),
                    expires: Some(1_764_000_000),
                }),
                AnyLease::V6(Dhcpv6Lease {
                    ip: "fd00::24".into(),
                    duid: "00:04:aa:bb:cc".into(),
                    iaid: 99,
                    temporary: true,
                    hostname: None,
                    mac: None,
                    iface: "lan0".into(),
                    expires: None,
                }),
            ]
        );
        let problems = file.problems.lines();
        assert_eq!(problems.len(), 5, "{problems:?}");
        assert!(
            problems[0].starts_with("line 3: no interface"),
            "{problems:?}"
        );
        assert!(problems[1].starts_with("line 4:"), "{problems:?}");
        assert_eq!(problems[2], "line 8: IAID \"x1\" is not a number");
        assert_eq!(problems[3], "line 9: \"0 7 fd00::26 *\" has no client DUID");
        assert!(
            problems[4].starts_with("line 10: no interface has a prefix holding 2001:db8:9::1"),
            "{problems:?}"
        );
    }

    fn line(i: usize) -> String {
        format!("0 02:00:00:00:00:{i:02x} 192.168.1.{i} h{i} *\n")
    }

    #[test]
    fn a_bad_line_is_skipped_and_the_others_are_taken() {
        let mut text = line(1).into_bytes();
        text.extend_from_slice(b"0 02:00:00:00:00:aa 192.168.1.\xff h *\n");
        text.extend_from_slice(line(2).as_bytes());
        text.extend_from_slice(b"0 02:00:00:00:00:ab ::ffff:192.168.1.3 mapped *\n");
        text.extend_from_slice(line(4).as_bytes());
        text.extend(std::iter::repeat_n(b'A', 1 << 20));
        text.extend_from_slice(b"\n");
        text.extend_from_slice(line(5).trim_end().as_bytes());
        let file = parse_dnsmasq(text.as_slice(), &lan(), 10).unwrap();
        let ips: Vec<&str> = file.leases.iter().map(|l| l.ip()).collect();
        assert_eq!(
            ips,
            ["192.168.1.1", "192.168.1.2", "192.168.1.4", "192.168.1.5"]
        );
        assert_eq!(
            file.problems.lines(),
            [
                "line 2: not UTF-8; skipped",
                "line 4: \"::ffff:192.168.1.3\" is an IPv4-mapped IPv6 address; name the IPv4 address",
                "line 6: longer than 1024 bytes; skipped",
            ]
        );
    }

    #[test]
    fn a_hundred_thousand_bad_lines_make_a_few_problems_and_a_count() {
        let mut text = "this is garbage\n".repeat(100_000);
        text.push_str(&line(7));
        let file = parse_dnsmasq(text.as_bytes(), &lan(), 10).unwrap();
        assert_eq!(
            file.leases,
            [AnyLease::V4(lease(
                "192.168.1.7",
                "02:00:00:00:00:07",
                Some("h7"),
                None
            ))]
        );
        assert_eq!(file.problems.count(), 100_000);
        let lines = file.problems.lines();
        assert_eq!(lines.len(), PROBLEMS_SHOWN + 1);
        assert_eq!(
            lines[0],
            "line 1: \"this is garbage\" is not EXPIRY MAC IP HOSTNAME CLIENT-ID"
        );
        assert_eq!(lines[5], "99995 more problems not shown (100000 in all)");
    }

    #[test]
    fn what_a_problem_quotes_is_cut() {
        let text = format!("{} 02:00:00:00:00:01 192.168.1.1 h *\n", "9".repeat(900));
        let file = parse_dnsmasq(text.as_bytes(), &lan(), 10).unwrap();
        let lines = file.problems.lines();
        assert!(lines[0].starts_with("line 1: expiry \"999"), "{lines:?}");
        assert!(lines[0].len() < 120, "{lines:?}");
    }

    #[test]
    fn leases_beyond_the_maximum_are_not_held() {
        let text: String = (1..=5).map(line).collect();
        let file = parse_dnsmasq(text.as_bytes(), &lan(), 3).unwrap();
        assert_eq!(file.leases.len(), 3);
        assert_eq!(
            file.problems.lines(),
            [
                "line 4: more than 3 leases in the file (`leases.max`); skipped",
                "line 5: more than 3 leases in the file (`leases.max`); skipped",
            ]
        );
    }

    #[test]
    fn a_line_is_held_up_to_its_bound_only() {
        let mut reader =
            std::io::BufReader::with_capacity(16, "abcdefghij\nshort\nlast".as_bytes());
        let mut buf = Vec::new();
        assert_eq!(next_line(&mut reader, &mut buf, 4).unwrap(), Some(false));
        assert_eq!(buf, b"abcd");
        assert_eq!(next_line(&mut reader, &mut buf, 5).unwrap(), Some(true));
        assert_eq!(buf, b"short");
        assert_eq!(next_line(&mut reader, &mut buf, 5).unwrap(), Some(true));
        assert_eq!(buf, b"last");
        assert_eq!(next_line(&mut reader, &mut buf, 5).unwrap(), None);
    }

    #[test]
    fn the_lease_file_is_followed_by_difference() {
        let mut l = Leases::new(10);
        let a = lease("192.168.1.10", A, Some("nas"), None);
        let b = lease("192.168.1.11", B, None, None);
        let both = vec![AnyLease::V4(a.clone()), AnyLease::V4(b.clone())];
        let (events, _) = l.sync_file(both.clone(), 0);
        assert_eq!(events.len(), 2);
        // Reading the same file again changes nothing.
        assert_eq!(l.sync_file(both, 0).0, vec![]);
        // b leaves the file; a's host name changes.
        let a2 = lease("192.168.1.10", A, Some("nas2"), None);
        let (events, _) = l.sync_file(vec![AnyLease::V4(a2.clone())], 0);
        assert_eq!(
            events,
            vec![Event::LeaseExpired(b), Event::LeaseRenewed(a2.clone())]
        );
        assert_eq!(l.list(), vec![a2]);
    }
}
