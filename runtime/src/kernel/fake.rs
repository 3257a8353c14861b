//! An in-memory kernel for tests of pure logic: it holds tables in the
//! planner's model and applies transactions with [`simulate`], all or
//! nothing, refusing what the kernel would refuse; and sysctls, by path.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use nix::errno::Errno;

use super::{ApplyReport, Kernel, KernelError, Observation, next_generation};
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
}
