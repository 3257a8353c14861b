//! An in-memory kernel for tests of pure logic: it holds tables in the
//! planner's model and applies transactions with [`simulate`], all or
//! nothing, refusing what the kernel would refuse; and sysctls, by path.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use nix::errno::Errno;

use super::{ApplyReport, Kernel, KernelError, Observation, next_generation};
use crate::plan::{ObservedTable, Transaction, simulate};

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

    /// A sysctl's value, if it exists.
    pub fn sysctl(&self, key: &str) -> Option<&str> {
        self.sysctls
            .get(&crate::sysctl::proc_path(key))
            .map(String::as_str)
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

    fn write_sysctl(&mut self, path: &Path, value: &str) -> io::Result<()> {
        match self.sysctls.get_mut(path) {
            Some(v) => {
                *v = value.to_string();
                self.sysctl_writes += 1;
                Ok(())
            }
            None => Err(io::Error::from_raw_os_error(libc::ENOENT)),
        }
    }
}
