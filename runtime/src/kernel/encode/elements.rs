//! Values and elements as the kernel holds them: each value's bytes for its
//! type (addresses and ports in network byte order, marks in host byte
//! order, names zero-padded), concatenations with each part in whole
//! 32-bit registers, and the elements of an interval set laid out as nft
//! sends them (a range as its start and the end after it, flagged; in a
//! concatenation, the start and the inclusive end of every part).

use crate::ir::{Element, Key, KeyType, Value};

/// libnftnl's flag of the element that ends an interval.
pub(crate) const NFT_SET_ELEM_INTERVAL_END: u32 = 1;

/// One element as sent: its key, the key that ends it (a concatenation's
/// interval) and its flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KernelElement {
    pub key: Vec<u8>,
    pub key_end: Option<Vec<u8>>,
    pub flags: u32,
}

/// Which end of a value's range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    First,
    Last,
}

/// The bytes of one end of `v`, a value of type `ty`.
pub(crate) fn value_bytes(ty: KeyType, v: &Value, end: End) -> Vec<u8> {
    match v {
        Value::Addr(a) => address(*a),
        Value::Prefix(p) => match end {
            End::First => address(p.network()),
            End::Last => address(p.broadcast()),
        },
        Value::AddrRange(a, b) => address(if end == End::First { *a } else { *b }),
        Value::Number(n) => number(ty, *n),
        Value::Range(a, b) => number(ty, if end == End::First { *a } else { *b }),
        Value::Name(name) => {
            // A wildcard compares its stem only; in a key the name is whole.
            let mut out = vec![0; KeyType::Ifname.size()];
            let stem = name.strip_suffix('*').unwrap_or(name);
            out[..stem.len()].copy_from_slice(stem.as_bytes());
            out
        }
        Value::Mac(m) => m.to_vec(),
    }
}

fn address(a: std::net::IpAddr) -> Vec<u8> {
    match a {
        std::net::IpAddr::V4(a) => a.octets().to_vec(),
        std::net::IpAddr::V6(a) => a.octets().to_vec(),
    }
}

fn number(ty: KeyType, n: u32) -> Vec<u8> {
    match ty {
        KeyType::InetService => (n as u16).to_be_bytes().to_vec(),
        // The kernel's meta and ct marks are host-endian registers.
        KeyType::Mark => n.to_ne_bytes().to_vec(),
        _ => vec![n as u8],
    }
}

/// The bytes of one end of an element of `key`: a concatenation's parts
/// each padded to whole registers, as nft's concatenations load them.
pub(crate) fn key_bytes(key: &Key, element: &Element, end: End) -> Vec<u8> {
    let concatenated = key.is_concatenation();
    let mut out = Vec::with_capacity(key.len());
    for (ty, v) in key.0.iter().zip(&element.0) {
        out.extend(value_bytes(*ty, v, end));
        if concatenated {
            out.resize(out.len().div_ceil(4) * 4, 0);
        }
    }
    out
}

/// The key after `bytes` (big-endian), or None past the last one.
fn next_key(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut out = bytes.to_vec();
    for b in out.iter_mut().rev() {
        let (sum, carry) = b.overflowing_add(1);
        *b = sum;
        if !carry {
            return Some(out);
        }
    }
    None
}

/// The elements to send for `elements` of `key`. Without `intervals`, one
/// element each. With intervals and one part (the elements sorted and not
/// overlapping, as validation leaves them), nft's layout: an interval end
/// at 0 unless the first starts there, then every interval as its start and
/// the end after its last key (none when it reaches the last key there
/// is). With intervals and a concatenation, each element with the start and
/// the inclusive end of its parts.
pub(crate) fn kernel_elements(
    key: &Key,
    elements: &[Element],
    intervals: bool,
) -> Vec<KernelElement> {
    kernel_elements_by(elements, intervals, key.is_concatenation(), |e, end| {
        key_bytes(key, e, end)
    })
}

/// As [`kernel_elements`], with each end's bytes from `bytes` (for keys
/// whose bytes depend on more than their type: a field's load).
pub(crate) fn kernel_elements_by(
    elements: &[Element],
    intervals: bool,
    concatenated: bool,
    bytes: impl Fn(&Element, End) -> Vec<u8>,
) -> Vec<KernelElement> {
    let single = |e: &Element| KernelElement {
        key: bytes(e, End::First),
        key_end: None,
        flags: 0,
    };
    if !intervals {
        return elements.iter().map(single).collect();
    }
    if concatenated {
        return elements
            .iter()
            .map(|e| KernelElement {
                key: bytes(e, End::First),
                key_end: Some(bytes(e, End::Last)),
                flags: 0,
            })
            .collect();
    }
    let mut out = Vec::with_capacity(elements.len() * 2 + 1);
    let end = |key: Vec<u8>| KernelElement {
        key,
        key_end: None,
        flags: NFT_SET_ELEM_INTERVAL_END,
    };
    if let Some(first) = elements.first() {
        let start = bytes(first, End::First);
        if start.iter().any(|b| *b != 0) {
            out.push(end(vec![0; start.len()]));
        }
    }
    for e in elements {
        out.push(single(e));
        if let Some(after) = next_key(&bytes(e, End::Last)) {
            out.push(end(after));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(elements: &[KernelElement]) -> Vec<String> {
        elements
            .iter()
            .map(|e| {
                let mut s = crate::text::hex(&e.key);
                if let Some(end) = &e.key_end {
                    s.push_str(" - ");
                    s.push_str(&crate::text::hex(end));
                }
                format!("{s} : {}", e.flags)
            })
            .collect()
    }

    fn v4(key: &[KeyType], values: Vec<Value>) -> (Key, Element) {
        (Key(key.to_vec()), Element(values))
    }

    /// As `nft --debug=netlink -c` shows nft 1.0.6 sending each (its words
    /// are host-order 32-bit numbers; these are the bytes).
    #[test]
    fn elements_are_laid_out_as_nft_sends_them() {
        let addr = |s: &str| Value::Addr(s.parse().unwrap());
        let key = Key(vec![KeyType::Ipv4Addr]);
        let elements = [
            Element(vec![addr("1.2.3.4")]),
            Element(vec![Value::Prefix("10.0.0.0/8".parse().unwrap())]),
            Element(vec![Value::AddrRange(
                "192.168.1.10".parse().unwrap(),
                "192.168.1.20".parse().unwrap(),
            )]),
        ];
        assert_eq!(
            hex(&kernel_elements(&key, &elements, true)),
            [
                "00000000 : 1",
                "01020304 : 0",
                "01020305 : 1",
                "0a000000 : 0",
                "0b000000 : 1",
                "c0a8010a : 0",
                "c0a80115 : 1"
            ]
        );

        let ports = Key(vec![KeyType::InetService]);
        assert_eq!(
            hex(&kernel_elements(
                &ports,
                &[
                    Element(vec![Value::Range(1, 1024)]),
                    Element(vec![Value::Number(8080)])
                ],
                true
            )),
            ["0000 : 1", "0001 : 0", "0401 : 1", "1f90 : 0", "1f91 : 1"]
        );

        let (key, e) = v4(
            &[KeyType::Ipv4Addr, KeyType::InetService],
            vec![addr("1.2.3.4"), Value::Number(80)],
        );
        assert_eq!(
            hex(&kernel_elements(&key, &[e], false)),
            ["0102030400500000 : 0"]
        );
        let (key, e) = v4(
            &[KeyType::Ipv4Addr, KeyType::InetService],
            vec![
                Value::Prefix("10.0.0.0/8".parse().unwrap()),
                Value::Range(1, 1024),
            ],
        );
        assert_eq!(
            hex(&kernel_elements(&key, &[e], true)),
            ["0a00000000010000 - 0affffff04000000 : 0"]
        );

        let name = Key(vec![KeyType::Ifname]);
        assert_eq!(
            hex(&kernel_elements(
                &name,
                &[Element(vec![Value::Name("lan0".into())])],
                false
            )),
            ["6c616e30000000000000000000000000 : 0"]
        );
        let mark = Key(vec![KeyType::Mark]);
        assert_eq!(
            kernel_elements(&mark, &[Element(vec![Value::Number(1)])], false)[0].key,
            1u32.to_ne_bytes()
        );
    }

    #[test]
    fn an_interval_to_the_last_key_has_no_end() {
        let key = Key(vec![KeyType::InetService]);
        assert_eq!(
            hex(&kernel_elements(
                &key,
                &[Element(vec![Value::Range(1024, 65535)])],
                true
            )),
            ["0000 : 1", "0400 : 0"]
        );
    }
}
