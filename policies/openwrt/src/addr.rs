//! Addresses as fw4 takes them: an address, a prefix (`10.0.0.0/8`), an
//! address with a netmask (`10.0.0.0/255.0.0.0`, also one that is not a
//! prefix, `::1/::ffff`), each negated by a leading `!`.

use std::net::IpAddr;

use wasmwall_sdk::IpFamily;

/// One address of a config, as fw4 reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subnet {
    pub family: IpFamily,
    /// The address with the mask applied (host bits cleared).
    pub addr: IpAddr,
    /// The address as written: an interface's own address
    /// (`192.168.1.1/24` is the host 192.168.1.1 on 192.168.1.0/24).
    pub host: IpAddr,
    /// The prefix length; none for a mask that is not a prefix.
    pub bits: Option<u8>,
    /// The mask, as an address.
    pub mask: IpAddr,
    /// Written with a leading `!`.
    pub invert: bool,
}

impl Subnet {
    /// `192.168.1.0/24`, or the bare address of a host (`/32`, `/128`):
    /// nft's text. Not for a mask that is not a prefix.
    pub fn cidr(&self) -> String {
        let full = if self.family == IpFamily::V4 { 32 } else { 128 };
        match self.bits {
            Some(b) if b == full => self.addr.to_string(),
            Some(b) => format!("{}/{b}", self.addr),
            None => format!("{}/{}", self.addr, self.mask),
        }
    }
}

impl Subnet {
    /// The host address alone (fw4's `to_hostaddr`): `192.168.1.1/24` is
    /// `192.168.1.1`.
    pub fn host_only(&self) -> Subnet {
        let (bits, mask) = match self.family {
            IpFamily::V4 => (32, IpAddr::from([255u8; 4])),
            _ => (128, IpAddr::from([255u8; 16])),
        };
        Subnet {
            family: self.family,
            addr: self.host,
            host: self.host,
            bits: Some(bits),
            mask,
            invert: false,
        }
    }

    /// Whether `addr` is in this subnet.
    pub fn contains(&self, addr: IpAddr) -> bool {
        let (a, m, n) = match (addr, self.mask, self.addr) {
            (IpAddr::V4(a), IpAddr::V4(m), IpAddr::V4(n)) => (
                u32::from(a) as u128,
                u32::from(m) as u128,
                u32::from(n) as u128,
            ),
            (IpAddr::V6(a), IpAddr::V6(m), IpAddr::V6(n)) => {
                (u128::from(a), u128::from(m), u128::from(n))
            }
            _ => return false,
        };
        a & m == n
    }
}

/// Reads one address, prefix or address with mask, `!` first to negate.
pub fn subnet(text: &str) -> Result<Subnet, String> {
    let (invert, rest) = match text.strip_prefix('!') {
        Some(r) => (true, r.trim_start()),
        None => (false, text),
    };
    let (addr, mask) = match rest.split_once('/') {
        Some((a, m)) => (a, Some(m)),
        None => (rest, None),
    };
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| format!("{text:?} is not an IPv4 or IPv6 address"))?;
    let (family, full) = match addr {
        IpAddr::V4(_) => (IpFamily::V4, 32u32),
        IpAddr::V6(_) => (IpFamily::V6, 128u32),
    };
    let mask_bits: u128 = match mask {
        None => ones(full, full),
        Some(m) if !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit()) => {
            let bits: u32 = m
                .parse()
                .ok()
                .filter(|b| *b <= full)
                .ok_or_else(|| format!("{text:?}: the prefix length must be 0 to {full}"))?;
            ones(bits, full)
        }
        Some(m) => match (m.parse::<IpAddr>(), addr) {
            (Ok(IpAddr::V4(m)), IpAddr::V4(_)) => u32::from(m) as u128,
            (Ok(IpAddr::V6(m)), IpAddr::V6(_)) => u128::from(m),
            _ => {
                return Err(format!(
                    "{text:?}: the mask is not a prefix length or an address of the same family"
                ));
            }
        },
    };
    let value = match addr {
        IpAddr::V4(a) => u32::from(a) as u128,
        IpAddr::V6(a) => u128::from(a),
    };
    let to_addr = |v: u128| match family {
        IpFamily::V4 => IpAddr::from((v as u32).to_be_bytes()),
        _ => IpAddr::from(v.to_be_bytes()),
    };
    let leading = if full == 32 {
        (mask_bits as u32).leading_ones()
    } else {
        mask_bits.leading_ones()
    };
    let bits = (ones(leading, full) == mask_bits).then_some(leading as u8);
    Ok(Subnet {
        family,
        addr: to_addr(value & mask_bits),
        host: addr,
        bits,
        mask: to_addr(mask_bits),
        invert,
    })
}

/// A mask of `bits` leading ones in a `full`-bit address.
fn ones(bits: u32, full: u32) -> u128 {
    if bits == 0 {
        0
    } else {
        (u128::MAX << (128 - bits)) >> (128 - full)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_prefixes_and_masks() {
        let s = subnet("192.168.1.7/24").unwrap();
        assert_eq!(
            (s.cidr(), s.bits, s.invert),
            ("192.168.1.0/24".into(), Some(24), false)
        );
        assert_eq!(subnet("10.0.0.1").unwrap().cidr(), "10.0.0.1");
        assert_eq!(subnet("10.0.0.0/255.0.0.0").unwrap().cidr(), "10.0.0.0/8");
        assert_eq!(subnet("0.0.0.0/0").unwrap().cidr(), "0.0.0.0/0");
        let v6 = subnet("!fe80::1/10").unwrap();
        assert_eq!(
            (v6.cidr(), v6.invert, v6.family),
            ("fe80::/10".into(), true, IpFamily::V6)
        );
        let odd = subnet("::1234/::ffff").unwrap();
        assert_eq!(
            (odd.bits, odd.addr.to_string(), odd.mask.to_string()),
            (None, "::1234".into(), "::ffff".into())
        );
        let odd4 = subnet("10.0.0.5/0.0.0.255").unwrap();
        assert_eq!((odd4.bits, odd4.addr.to_string()), (None, "0.0.0.5".into()));
    }

    #[test]
    fn hosts_and_membership() {
        let s = subnet("192.168.1.1/24").unwrap();
        assert_eq!(s.host_only().cidr(), "192.168.1.1");
        assert!(s.contains("192.168.1.200".parse().unwrap()));
        assert!(!s.contains("192.168.2.1".parse().unwrap()));
        assert!(!s.contains("::1".parse().unwrap()));
        assert_eq!(subnet("fd00::1/64").unwrap().host_only().cidr(), "fd00::1");
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert!(
            subnet("lan")
                .unwrap_err()
                .contains("not an IPv4 or IPv6 address")
        );
        assert!(subnet("10.0.0.0/33").unwrap_err().contains("0 to 32"));
        assert!(subnet("10.0.0.0/::ff").unwrap_err().contains("same family"));
    }
}
