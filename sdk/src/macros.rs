//! The two generators of the SDK's small value types: `flag_set!` for a set
//! of flags combined with `|` (the WIT `flags` types), and `numbered!` for
//! an enum of named numbers with an `Other(u8)` case for the rest (ICMP
//! types, layer-4 protocols).

/// A `Copy` set of flags: associated constants, one bit each, combined
/// with `|`, tested with `contains`.
macro_rules! flag_set {
    (
        $(#[$meta:meta])*
        $name:ident { $($(#[$flag_meta:meta])* $flag:ident = $bit:literal),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub struct $name(u16);

        impl $name {
            $($(#[$flag_meta])* pub const $flag: $name = $name(1 << $bit);)+

            /// No flag.
            pub const fn empty() -> Self {
                $name(0)
            }

            /// Every flag.
            pub const fn all() -> Self {
                $name(0 $(| (1 << $bit))+)
            }

            /// Whether no flag is set.
            pub const fn is_empty(self) -> bool {
                self.0 == 0
            }

            /// Whether every flag of `other` is set in `self`.
            pub const fn contains(self, other: Self) -> bool {
                self.0 & other.0 == other.0
            }
        }

        impl std::ops::BitOr for $name {
            type Output = Self;
            fn bitor(self, other: Self) -> Self {
                $name(self.0 | other.0)
            }
        }

        impl std::ops::BitOrAssign for $name {
            fn bitor_assign(&mut self, other: Self) {
                self.0 |= other.0;
            }
        }

        impl std::ops::BitAnd for $name {
            type Output = Self;
            fn bitand(self, other: Self) -> Self {
                $name(self.0 & other.0)
            }
        }

        /// Shows the flags by name, e.g. `TcpFlags(SYN | ACK)`.
        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let names: Vec<&str> = [$((stringify!($flag), $name::$flag)),+]
                    .into_iter()
                    .filter(|&(_, flag)| self.contains(flag))
                    .map(|(name, _)| name)
                    .collect();
                write!(f, "{}({})", stringify!($name), names.join(" | "))
            }
        }
    };
}

/// A `Copy` enum of numbers with names, and `Other(u8)` for any number
/// without one. `From<u8>` picks the named case where there is one.
macro_rules! numbered {
    (
        $(#[$meta:meta])*
        $name:ident { $($(#[$case_meta:meta])* $case:ident = $number:literal),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$case_meta])* $case,)+
            /// Any other, by number. `From<u8>` gives the named case for a
            /// number that has one.
            Other(u8),
        }

        impl $name {
            /// Its number in the packet.
            pub const fn number(self) -> u8 {
                match self {
                    $($name::$case => $number,)+
                    $name::Other(number) => number,
                }
            }
        }

        impl From<u8> for $name {
            fn from(number: u8) -> Self {
                match number {
                    $($number => $name::$case,)+
                    other => $name::Other(other),
                }
            }
        }

        impl From<$name> for crate::Value {
            fn from(v: $name) -> Self {
                crate::Value::Number(v.number().into())
            }
        }
    };
}

pub(crate) use {flag_set, numbered};
