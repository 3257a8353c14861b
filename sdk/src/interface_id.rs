//! IPv6 interface identifiers: the low 64 bits of an address, which stay
//! when the prefix before them moves. The EUI-64 identifier a MAC gives
//! (what SLAAC forms without privacy extensions), and the match of an
//! address by its identifier whatever the prefix (`ip6 daddr &
//! ::ffff:ffff:ffff:ffff == ::5054:ff:fe12:3456`), built on the masked
//! test.

use std::net::Ipv6Addr;

use crate::packet::{Field, IpFamily, Value};
use crate::rule::{Matcher, RuleBuilder};

/// The mask of an interface identifier: the low 64 bits.
pub const INTERFACE_ID_MASK: Ipv6Addr = Ipv6Addr::new(0, 0, 0, 0, 0xffff, 0xffff, 0xffff, 0xffff);

/// The modified EUI-64 interface identifier of a MAC (RFC 4291, appendix
/// A): its two halves around ff:fe, with the universal/local bit flipped.
/// `None` if `mac` is not six hex pairs joined by ':'.
///
/// ```
/// use wasmwall_sdk::eui64_interface_id;
/// let id = eui64_interface_id("52:54:00:12:34:56").unwrap();
/// assert_eq!(id.to_string(), "::5054:ff:fe12:3456");
/// assert_eq!(eui64_interface_id("nas"), None);
/// ```
pub fn eui64_interface_id(mac: &str) -> Option<Ipv6Addr> {
    let parts: Vec<&str> = mac.split(':').collect();
    if parts.len() != 6 || parts.iter().any(|p| p.len() != 2) {
        return None;
    }
    let mut b = [0u8; 6];
    for (byte, part) in b.iter_mut().zip(&parts) {
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    let word = |hi: u8, lo: u8| (u16::from(hi) << 8) | u16::from(lo);
    Some(Ipv6Addr::new(
        0,
        0,
        0,
        0,
        word(b[0] ^ 0x02, b[1]),
        word(b[2], 0xff),
        word(0xfe, b[3]),
        word(b[4], b[5]),
    ))
}

/// The interface identifier of `address`: its low 64 bits, the prefix
/// bits zero.
///
/// ```
/// use std::net::Ipv6Addr;
/// use wasmwall_sdk::interface_id;
/// let a: Ipv6Addr = "2001:db8:0:1:5054:ff:fe12:3456".parse().unwrap();
/// assert_eq!(interface_id(a).to_string(), "::5054:ff:fe12:3456");
/// ```
pub fn interface_id(address: Ipv6Addr) -> Ipv6Addr {
    Ipv6Addr::from(u128::from(address) & u128::from(INTERFACE_ID_MASK))
}

/// The value of an interface-ID match: a parsed address keeps only its
/// low 64 bits; a text that is not an address goes to the runtime as it
/// is, which refuses it by name.
fn id_value(id: &str) -> Value {
    match id.parse::<Ipv6Addr>() {
        Ok(a) => Value::from(interface_id(a)),
        Err(_) => Value::address(id),
    }
}

fn interface_id_matcher(field: Field, id: &str) -> Matcher {
    Matcher::Masked {
        field,
        mask: Value::from(INTERFACE_ID_MASK),
        value: id_value(id),
    }
}

impl Matcher {
    /// The IPv6 destination's low 64 bits are `id`, whatever the prefix
    /// ("::5054:ff:fe12:3456", or a whole address, whose prefix is
    /// dropped). Negate it with `RuleBuilder::not_matching`.
    pub fn ip6_daddr_interface_id(id: &str) -> Matcher {
        interface_id_matcher(Field::Daddr(IpFamily::V6), id)
    }

    /// The IPv6 source's low 64 bits are `id`, as
    /// [`Matcher::ip6_daddr_interface_id`].
    pub fn ip6_saddr_interface_id(id: &str) -> Matcher {
        interface_id_matcher(Field::Saddr(IpFamily::V6), id)
    }
}

impl RuleBuilder {
    /// The IPv6 destination's interface identifier (its low 64 bits) is
    /// `id`, whatever the prefix: a rule that needs no change when the
    /// LAN's prefix moves.
    ///
    /// ```
    /// use wasmwall_sdk::{eui64_interface_id, Matcher, Rule, Value};
    /// // The NAS's SLAAC address on whatever prefix the LAN has now.
    /// let id = eui64_interface_id("52:54:00:12:34:56").unwrap().to_string();
    /// let nas = Rule::new().iifname("wan0").ip6_daddr_interface_id(&id).tcp_dport(443).accept();
    /// assert_eq!(
    ///     nas.matches()[1].matcher(),
    ///     &Matcher::Masked {
    ///         field: wasmwall_sdk::Field::Daddr(wasmwall_sdk::IpFamily::V6),
    ///         mask: Value::address("::ffff:ffff:ffff:ffff"),
    ///         value: Value::address("::5054:ff:fe12:3456"),
    ///     }
    /// );
    /// ```
    pub fn ip6_daddr_interface_id(self, id: &str) -> Self {
        self.matching(Matcher::ip6_daddr_interface_id(id))
    }

    /// The IPv6 source's interface identifier is `id`, whatever the
    /// prefix.
    pub fn ip6_saddr_interface_id(self, id: &str) -> Self {
        self.matching(Matcher::ip6_saddr_interface_id(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::Rule;

    #[test]
    fn a_mac_gives_its_eui64_identifier() {
        for (mac, id) in [
            ("52:54:00:12:34:56", "::5054:ff:fe12:3456"),
            ("00:00:00:00:00:00", "::200:ff:fe00:0"),
            // The universal/local bit flips either way; case is no matter.
            ("02:AB:CD:EF:01:23", "::ab:cdff:feef:123"),
            ("ff:ff:ff:ff:ff:ff", "::fdff:ffff:feff:ffff"),
        ] {
            assert_eq!(eui64_interface_id(mac), Some(id.parse().unwrap()), "{mac}");
        }
        for bad in [
            "",
            "nas",
            "52:54:00:12:34",
            "52:54:00:12:34:56:78",
            "52:54:00:12:34:5",
            "52:54:00:12:34:zz",
            "5254:00:12:34:56:7",
        ] {
            assert_eq!(eui64_interface_id(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn an_address_keeps_its_low_64_bits() {
        let a: Ipv6Addr = "2001:db8:0:1:5054:ff:fe12:3456".parse().unwrap();
        assert_eq!(
            interface_id(a),
            "::5054:ff:fe12:3456".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(interface_id(INTERFACE_ID_MASK), INTERFACE_ID_MASK);
        assert_eq!(INTERFACE_ID_MASK.to_string(), "::ffff:ffff:ffff:ffff");
    }

    #[test]
    fn the_matchers_are_masked_tests_of_the_address() {
        let masked = |field, value: &str| Matcher::Masked {
            field,
            mask: Value::address("::ffff:ffff:ffff:ffff"),
            value: Value::address(value),
        };
        let rule = Rule::new()
            .ip6_daddr_interface_id("::5054:ff:fe12:3456")
            // A whole address: its prefix goes.
            .ip6_saddr_interface_id("2001:db8:0:1::23")
            .not_matching(Matcher::ip6_daddr_interface_id("::1"))
            .accept();
        let got: Vec<(&Matcher, bool)> = rule
            .matches()
            .iter()
            .map(|m| (m.matcher(), m.is_negated()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    &masked(Field::Daddr(IpFamily::V6), "::5054:ff:fe12:3456"),
                    false
                ),
                (&masked(Field::Saddr(IpFamily::V6), "::23"), false),
                (&masked(Field::Daddr(IpFamily::V6), "::1"), true),
            ]
        );
        // Not an address: passed on for the runtime to refuse.
        assert_eq!(
            Matcher::ip6_daddr_interface_id("nas"),
            masked(Field::Daddr(IpFamily::V6), "nas")
        );
    }
}
