//! Who else listens to nftables change notifications in this network
//! namespace. While any socket does, the kernel builds a notification of up
//! to 8 KiB for every object a batch changes and holds them all until the
//! commit ends: the kernel memory a large batch costs then grows about
//! eightfold (SECURITY.md, Kernel memory). wasmwall cannot unsubscribe
//! another process; it can say so before such a batch. The parsing is pure;
//! the read is one file.

/// NETLINK_NETFILTER in /proc/net/netlink's `Eth` column.
const NETFILTER: u32 = libc::NETLINK_NETFILTER as u32;
/// The bit of NFNLGRP_NFTABLES in the `Groups` column (groups 1-32).
const NFTABLES_GROUP_BIT: u32 = 1 << (libc::NFNLGRP_NFTABLES as u32 - 1);

/// The sockets listening to nftables notifications in a /proc/net/netlink
/// listing, but for the one whose inode is `except`.
pub fn nftables_listeners(listing: &str, except: Option<u64>) -> usize {
    listing
        .lines()
        .skip(1)
        .filter(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let (Some(eth), Some(groups), Some(inode)) = (cols.get(1), cols.get(3), cols.get(9))
            else {
                return false;
            };
            eth.parse::<u32>() == Ok(NETFILTER)
                && u32::from_str_radix(groups, 16).is_ok_and(|g| g & NFTABLES_GROUP_BIT != 0)
                && inode.parse::<u64>().ok() != except
        })
        .count()
}

/// The listeners of the calling thread's network namespace, ours (the
/// socket of inode `except`) left out; None when the listing cannot be read.
pub fn read(except: Option<u64>) -> Option<usize> {
    let listing = std::fs::read_to_string("/proc/thread-self/net/netlink").ok()?;
    Some(nftables_listeners(&listing, except))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_netfilter_sockets_in_the_nftables_group_count_and_ours_is_left_out() {
        let listing = "\
sk               Eth Pid        Groups   Rmem     Wmem     Dump  Locks    Drops    Inode
000000002c8464c1 0   0          00000040 0        0        0     2        0        4
0000000093dd0724 12  4242       00000040 0        0        0     2        0        100
0000000093dd0725 12  4243       00000000 0        0        0     2        0        101
0000000093dd0726 12  4244       000000c1 0        0        0     2        0        102
0000000093dd0727 12  4245       00000040 0        0        0     2        0        103
garbage
";
        assert_eq!(nftables_listeners(listing, None), 3);
        assert_eq!(nftables_listeners(listing, Some(103)), 2);
        assert_eq!(nftables_listeners("", None), 0);
    }
}
