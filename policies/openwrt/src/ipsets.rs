//! Stand-in for the `ipset` sections, written by another helper at the
//! same time: only the interface the rules code against (a set by name,
//! its family, and the fields a match on it reads). The lead replaces this
//! file with the real one at merge; nothing here parses a section.

use wasmwall_sdk::{Field, IpFamily, Transport};

/// Which end of the packet one field of a set match reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Src,
    Dest,
}

/// One `ipset` section, as far as the rules need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipset {
    pub name: String,
    /// None for a set without addresses.
    pub family: Option<IpFamily>,
}

/// Every `ipset` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ipsets(pub Vec<Ipset>);

impl Ipsets {
    pub fn get(&self, name: &str) -> Option<&Ipset> {
        self.0.iter().find(|s| s.name == name)
    }
}

/// The fields a match on `set` reads, one per part of its key. The
/// stand-in knows only address sets: one address of the set's family.
pub fn set_fields(
    set: &Ipset,
    dirs: &[Option<Direction>],
    _proto: Option<Transport>,
) -> Result<Vec<Field>, String> {
    let family = set
        .family
        .ok_or_else(|| format!("set {:?} holds no addresses", set.name))?;
    Ok(vec![match dirs.first().copied().flatten() {
        Some(Direction::Dest) => Field::Daddr(family),
        _ => Field::Saddr(family),
    }])
}
