//! An in-memory kernel for tests of pure logic: it holds tables in the
//! planner's model and applies transactions with [`simulate`], all or
//! nothing, refusing what the kernel would refuse; sysctls, by path; and
//! a conntrack table and a routing table that tests fill.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnetwork::IpNetwork;
use nix::errno::Errno;

use super::{ApplyReport, Kernel, KernelError, Observation, next_generation};
use crate::flows::Flow;
use crate::plan::{ObservedTable, Transaction, simulate};
use crate::world::Features;

#[derive(Debug, Default)]
pub struct Fake {
    tables: HashMap<String, ObservedTable>,
    generation: u32,
    next_handle: u64,
    /// Sysctls by /proc/sys path; one not here does not exist.
    sysctls: HashMap<PathBuf, String>,
    /// Batches applied so far.
    pub batches: usize,
    /// Sysctl writes so far.
    pub sysctl_writes: usize,
    /// What the kernel has: its hardware offload lists every interface
    /// that can, present or not.
    pub features: Features,
    /// The conntrack table, as [`Kernel::flows`] lists it. A cut removes
    /// the entry with the same original tuple and zone, and the same id
    /// when the cut names one, as the kernel does.
    pub flows: Vec<Flow>,
    /// The routing table: destination network and output interface index.
    /// [`Kernel::route_oif`] takes the longest prefix holding the address;
    /// a local address needs its own host route (to the loopback's index).
    pub routes: Vec<(IpNetwork, u32)>,
}

impl Fake {
    pub fn new() -> Fake {
        Fake {
            generation: 1,
            ..Fake::default()
        }
    }

    pub fn table(&self, name: &str) -> Option<&ObservedTable> {
        self.tables.get(name)
    }

    /// Edits a table by hand, as another program would: the generation moves.
    pub fn edit(&mut self, name: &str, edit: impl FnOnce(&mut Option<ObservedTable>)) {
        let mut table = self.tables.remove(name);
        edit(&mut table);
        if let Some(t) = table {
            self.tables.insert(name.to_string(), t);
        }
        self.generation = next_generation(self.generation);
    }

    /// Sets a sysctl by hand (it exists from then on), e.g.
    /// `net.ipv4.ip_forward`.
    pub fn set_sysctl(&mut self, key: &str, value: &str) {
        self.sysctls
            .insert(crate::sysctl::proc_path(key), value.to_string());
    }

    /// Removes a sysctl, as the kernel does with an interface's keys when
    /// the interface goes.
    pub fn remove_sysctl(&mut self, key: &str) {
        self.sysctls.remove(&crate::sysctl::proc_path(key));
    }

    /// A sysctl's value, if it exists.
    pub fn sysctl(&self, key: &str) -> Option<&str> {
        self.sysctls
            .get(&crate::sysctl::proc_path(key))
            .map(String::as_str)
    }

    /// What the kernel changes besides when a forwarding `all` key changes
    /// (see [`crate::sysctl::spread`]).
    fn spread(&mut self, path: &Path, value: &str) {
        let Some(spread) = [
            "net.ipv4.ip_forward",
            "net.ipv4.conf.all.forwarding",
            "net.ipv6.conf.all.forwarding",
        ]
        .into_iter()
        .find(|k| crate::sysctl::proc_path(k) == path)
        .and_then(crate::sysctl::spread) else {
            return;
        };
        let off = value.trim() == "0";
        for key in spread.keys {
            let v = if key.ends_with("accept_redirects") {
                if off { "1" } else { "0" }
            } else {
                value
            };
            if let Some(old) = self.sysctls.get_mut(&crate::sysctl::proc_path(key)) {
                *old = v.to_string();
            }
        }
        let (family, leaf) = spread.each_interface;
        let dir = crate::sysctl::interfaces_dir(family);
        for (p, v) in &mut self.sysctls {
            let in_interface = p.parent().and_then(Path::parent) == Some(dir.as_path())
                && p.file_name().is_some_and(|n| n == leaf)
                && !p.ends_with(format!("all/{leaf}"));
            if in_interface {
                *v = value.to_string();
            }
        }
    }

    /// A fresh handle, as the kernel would give.
    pub fn handle(&mut self) -> u64 {
        self.next_handle += 1;
        self.next_handle
    }
}

impl Kernel for Fake {
    fn generation(&mut self) -> Result<u32, KernelError> {
        Ok(self.generation)
    }

    fn observe(&mut self, table: &str) -> Result<Observation, KernelError> {
        Ok(Observation {
            generation: self.generation,
            table: self.tables.get(table).cloned(),
        })
    }

    fn apply(
        &mut self,
        tx: &Transaction,
        generation: Option<u32>,
    ) -> Result<ApplyReport, KernelError> {
        if tx.is_empty() {
            return Ok(ApplyReport::default());
        }
        if generation.is_some_and(|g| g != self.generation) {
            return Err(KernelError::Changed);
        }
        let mut handles = Vec::new();
        let mut next = self.next_handle;
        let after = simulate(self.tables.get(&tx.table).cloned(), tx, &mut |_| {
            next += 1;
            handles.push(next);
            Some(next)
        })
        .map_err(|e| KernelError::Rejected {
            op: tx.ops[e.index].command(&tx.table),
            index: Some(e.index),
            errno: Errno::EINVAL,
            extack: Some(e.reason),
        })?;
        self.next_handle = next;
        match after {
            Some(t) => self.tables.insert(tx.table.clone(), t),
            None => self.tables.remove(&tx.table),
        };
        self.generation = next_generation(self.generation);
        self.batches += 1;
        Ok(ApplyReport {
            messages: tx.ops.len(),
            bytes: 0,
            rule_handles: Some(handles),
        })
    }

    fn read_sysctl(&mut self, path: &Path) -> io::Result<String> {
        self.sysctls
            .get(path)
            .cloned()
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))
    }

    fn list_sysctls(&mut self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names: Vec<String> = self
            .sysctls
            .keys()
            .filter_map(|p| p.strip_prefix(dir).ok()?.iter().next())
            .map(|n| n.to_string_lossy().into_owned())
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn write_sysctl(&mut self, path: &Path, value: &str) -> io::Result<()> {
        match self.sysctls.get_mut(path) {
            Some(v) => {
                let changed = *v != value;
                *v = value.to_string();
                self.sysctl_writes += 1;
                if changed {
                    self.spread(path, value);
                }
                Ok(())
            }
            None => Err(io::Error::from_raw_os_error(libc::ENOENT)),
        }
    }

    fn features(&mut self, interfaces: &[String]) -> Result<Features, KernelError> {
        Ok(Features {
            hardware_offload: self.hardware_offload(interfaces).unwrap_or_default(),
            ..self.features.clone()
        })
    }

    fn hardware_offload(&mut self, interfaces: &[String]) -> io::Result<Vec<String>> {
        Ok(interfaces
            .iter()
            .filter(|i| self.features.hardware_offload.contains(i))
            .cloned()
            .collect())
    }

    fn flows(&mut self) -> Result<Vec<Flow>, KernelError> {
        Ok(self.flows.clone())
    }

    fn cut_flows(&mut self, flows: &[Flow]) -> Result<usize, KernelError> {
        let mut cut = 0;
        for flow in flows {
            let same = |entry: &Flow| {
                entry.orig == flow.orig
                    && entry.zone == flow.zone
                    && flow.id.is_none_or(|id| entry.id == Some(id))
            };
            if let Some(at) = self.flows.iter().position(same) {
                self.flows.remove(at);
                cut += 1;
            }
        }
        Ok(cut)
    }

    fn route_oif(&mut self, dst: IpAddr) -> Result<Option<u32>, KernelError> {
        Ok(self
            .routes
            .iter()
            .filter(|(net, _)| net.contains(dst))
            .max_by_key(|(net, _)| net.prefix())
            .map(|(_, index)| *index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flows::{Tuple, proto};

    fn udp(src: &str, sport: u16, id: Option<u32>) -> Flow {
        let tuple = |src: &str, dst: &str, ports| Tuple {
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            proto: proto::UDP,
            ports: Some(ports),
            icmp: None,
        };
        Flow {
            orig: tuple(src, "10.0.0.1", (sport, 53)),
            reply: tuple("10.0.0.1", src, (53, sport)),
            status: 0,
            id,
            zone: 0,
            mark: 0,
        }
    }

    #[test]
    fn a_cut_removes_only_the_entry_it_names() {
        let mut fake = Fake::new();
        fake.flows = vec![
            udp("10.0.0.2", 4000, Some(1)),
            udp("10.0.0.3", 4000, Some(2)),
        ];
        // A newer entry with the same tuple has another id: it stays.
        assert_eq!(
            fake.cut_flows(&[udp("10.0.0.2", 4000, Some(9))]).unwrap(),
            0
        );
        assert_eq!(
            fake.cut_flows(&[udp("10.0.0.2", 4000, Some(1))]).unwrap(),
            1
        );
        assert_eq!(
            fake.cut_flows(&[udp("10.0.0.2", 4000, Some(1))]).unwrap(),
            0
        );
        let mut zoned = udp("10.0.0.3", 4000, None);
        zoned.zone = 5;
        assert_eq!(fake.cut_flows(&[zoned]).unwrap(), 0);
        assert_eq!(fake.cut_flows(&[udp("10.0.0.3", 4000, None)]).unwrap(), 1);
        assert!(fake.flows().unwrap().is_empty());
    }

    #[test]
    fn routes_take_the_longest_prefix() {
        let mut fake = Fake::new();
        fake.routes = vec![
            ("0.0.0.0/0".parse().unwrap(), 2),
            ("192.168.1.0/24".parse().unwrap(), 3),
            ("192.168.1.1/32".parse().unwrap(), 1),
        ];
        let oif = |fake: &mut Fake, ip: &str| fake.route_oif(ip.parse().unwrap()).unwrap();
        assert_eq!(oif(&mut fake, "192.168.1.7"), Some(3));
        assert_eq!(oif(&mut fake, "192.168.1.1"), Some(1));
        assert_eq!(oif(&mut fake, "203.0.113.9"), Some(2));
        assert_eq!(oif(&mut fake, "2001:db8::1"), None);
    }
}
