//! What one evaluation may use of memory and tables, counted over all of a
//! policy's instances together, and the trap that names the cap it hit.

use thiserror::Error;
use wasmtime::ResourceLimiter;

/// Table elements all of a policy's instances may hold together (the host
/// keeps a pointer for each). The Python and JavaScript policies use under
/// 10,000.
pub(super) const TABLE_ELEMENTS_MAX: usize = 1 << 20;
/// Core instances, memories and tables one evaluation may create. The Python
/// policy, the largest here, has about 60 instances.
const INSTANCES_MAX: usize = 1000;
const MEMORIES_MAX: usize = 100;
const TABLES_MAX: usize = 100;

/// A cap one evaluation ran into.
#[derive(Debug, Clone, Error)]
pub enum CapExceeded {
    #[error(
        "policy exceeded its memory cap of {} MiB (its memories would have grown to {} MiB)",
        cap >> 20,
        wanted.div_ceil(1 << 20)
    )]
    Memory { cap: usize, wanted: usize },
    #[error(
        "policy exceeded the cap of {cap} table elements (its tables would have grown to {wanted})"
    )]
    TableElements { cap: usize, wanted: usize },
}

/// The store's resource limiter. Unlike wasmtime's `StoreLimits`, which caps
/// each memory on its own, it caps all the store's memories together: a
/// component can hold many core instances, each with its own memory.
/// Growing past a cap traps, naming the cap.
#[derive(Debug)]
pub(super) struct StoreCaps {
    memory_cap: usize,
    memory_used: usize,
    table_elements_used: usize,
}

impl StoreCaps {
    pub(super) fn new(memory_cap: usize) -> Self {
        StoreCaps {
            memory_cap,
            memory_used: 0,
            table_elements_used: 0,
        }
    }
}

/// Counts a growth from `current` to `desired` into `used`, all of a
/// policy's memories (or tables) together: `Ok(false)` when it is beyond the
/// object's own maximum (the grow fails anyway), `Err(wanted)` when the
/// total would pass `cap`.
fn grow(
    used: &mut usize,
    current: usize,
    desired: usize,
    maximum: Option<usize>,
    cap: usize,
) -> Result<bool, usize> {
    if maximum.is_some_and(|max| desired > max) {
        return Ok(false);
    }
    let wanted = used.saturating_add(desired.saturating_sub(current));
    if wanted > cap {
        return Err(wanted);
    }
    *used = wanted;
    Ok(true)
}

impl ResourceLimiter for StoreCaps {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let cap = self.memory_cap;
        grow(&mut self.memory_used, current, desired, maximum, cap)
            .map_err(|wanted| CapExceeded::Memory { cap, wanted }.into())
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let cap = TABLE_ELEMENTS_MAX;
        grow(
            &mut self.table_elements_used,
            current,
            desired,
            maximum,
            cap,
        )
        .map_err(|wanted| CapExceeded::TableElements { cap, wanted }.into())
    }

    fn instances(&self) -> usize {
        INSTANCES_MAX
    }

    fn memories(&self) -> usize {
        MEMORIES_MAX
    }

    fn tables(&self) -> usize {
        TABLES_MAX
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_cap_holds_for_all_memories_together() {
        let mut caps = StoreCaps::new(10 << 20);
        assert!(caps.memory_growing(0, 6 << 20, None).unwrap());
        // A second memory: alone it fits the cap, with the first it does not.
        let err = caps.memory_growing(0, 6 << 20, None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "policy exceeded its memory cap of 10 MiB (its memories would have grown to 12 MiB)"
        );
        assert!(caps.memory_growing(6 << 20, 10 << 20, None).unwrap());
        // Beyond a memory's own maximum: a plain failure, nothing counted.
        assert!(!caps.memory_growing(0, 1 << 20, Some(64 << 10)).unwrap());
        assert!(caps.table_growing(0, TABLE_ELEMENTS_MAX, None).unwrap());
        assert!(caps.table_growing(0, 1, None).is_err());
    }
}
