//! The kernel name of a policy's chain or set: `<policy>/<name>`. This type
//! owns the split: a policy name never holds a '/', so the part before the
//! first '/' is the policy that made the object, and names of different
//! policies never collide. Names read from the kernel may be anything
//! (a chain added by hand); those have no policy.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KernelName(String);

impl KernelName {
    /// The name of policy `policy`'s object `name`.
    pub fn new(policy: &str, name: &str) -> KernelName {
        KernelName(format!("{policy}/{name}"))
    }

    /// The policy the object belongs to, when the name is one of ours.
    pub fn policy(&self) -> Option<&str> {
        self.0.split_once('/').map(|(policy, _)| policy)
    }

    /// The name as the policy wrote it, when the name is one of ours.
    pub fn local(&self) -> Option<&str> {
        self.0.split_once('/').map(|(_, name)| name)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A name as the kernel holds it, whoever made it.
impl From<String> for KernelName {
    fn from(name: String) -> Self {
        KernelName(name)
    }
}

impl From<&str> for KernelName {
    fn from(name: &str) -> Self {
        KernelName(name.to_string())
    }
}

impl Deref for KernelName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for KernelName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for KernelName {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for KernelName {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl fmt::Display for KernelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_is_the_part_before_the_first_slash() {
        let n = KernelName::new("home-router", "lan-tcp");
        assert_eq!(n, "home-router/lan-tcp");
        assert_eq!(n.policy(), Some("home-router"));
        assert_eq!(n.local(), Some("lan-tcp"));
        let by_hand = KernelName::from("input");
        assert_eq!((by_hand.policy(), by_hand.local()), (None, None));
    }
}
