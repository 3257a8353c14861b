//! TEST FIXTURE, NOT AN EXAMPLE. A policy that writes its answer by hand at
//! the canonical-ABI level instead of through the generated bindings, to do
//! what no honest toolchain does: point many entries of a list at the same
//! bytes. Its answer is a set whose `count` elements (default 1,000,000) all
//! point to one string of `bytes` bytes (default 32 MiB). In its own memory
//! that is `bytes + 8 * count` bytes, well under the memory cap; copied out
//! naively it would be `count * bytes` (32 TiB). `tests/hostile.rs` checks
//! that the runtime refuses to copy more than the cap allows.
//!
//! The bindings are generated for the real world `wasmwall:policy` (that
//! gives the component its type), but the export `evaluate` is written here
//! by hand, as `canon lift` calls it: one pointer to the parameters in, one
//! pointer to the result out.

#[cfg(target_arch = "wasm32")]
mod forged {
    wit_bindgen::generate!({
        path: "../../../wit/v0.1",
        world: "policy",
    });

    use wasmwall::policy::log::{Level, log};

    /// Byte offsets in the canonical ABI, for `evaluate`'s parameters
    /// (world-state, event, config) and its result<ruleset, string>.
    const CONFIG_OFFSET: usize = 80;

    /// The return area: result tag, then ruleset { chains, sets, sysctls }
    /// as three (pointer, length) pairs.
    #[repr(C, align(8))]
    struct ReturnArea([u32; 7]);

    static mut RETURN_AREA: ReturnArea = ReturnArea([0; 7]);

    /// # Safety
    ///
    /// Called by the component model only, with a pointer to the lowered
    /// parameters in this module's memory.
    #[unsafe(export_name = "evaluate")]
    pub unsafe extern "C" fn evaluate(params: *const u8) -> *const u8 {
        wit_bindgen::rt::maybe_link_cabi_realloc();
        // SAFETY: the canonical ABI lays the parameters out at `params`.
        let (count, bytes) = unsafe { settings(params) };
        log(
            Level::Info,
            &format!(
                "forging a set of {count} elements that all point to one string of {bytes} bytes"
            ),
        );

        let string: &'static [u8] = vec![b'7'; bytes].leak();
        let mut elements: Vec<u32> = Vec::with_capacity(2 * count);
        for _ in 0..count {
            elements.push(string.as_ptr() as u32);
            elements.push(string.len() as u32);
        }
        let elements = elements.leak();
        let name: &'static str = "alias";
        // named-set { name: string, elements: set-elements::ipv4(list<string>) }
        let set: &'static [u32] = vec![
            name.as_ptr() as u32,
            name.len() as u32,
            0, // set-elements tag 0: ipv4
            elements.as_ptr() as u32,
            count as u32,
        ]
        .leak();
        // SAFETY: one call at a time (components are not reentrant); the
        // area is read by the host before anything else runs here.
        unsafe {
            let area = &raw mut RETURN_AREA;
            (*area).0 = [0, 0, 0, set.as_ptr() as u32, 1, 0, 0];
            area as *const u8
        }
    }

    /// Nothing to free: this instance is thrown away after the call.
    #[unsafe(export_name = "cabi_post_evaluate")]
    pub extern "C" fn post_evaluate(_result: *const u8) {}

    /// `count` and `bytes` from the config list.
    ///
    /// # Safety
    ///
    /// `params` must point to the lowered parameters of `evaluate`.
    unsafe fn settings(params: *const u8) -> (usize, usize) {
        let (mut count, mut bytes) = (1_000_000, 32 << 20);
        // SAFETY: the caller's promise; every pointer read is one the host
        // wrote while lowering the parameters.
        unsafe {
            let words = params.add(CONFIG_OFFSET) as *const u32;
            let (list, len) = (*words as *const u32, *words.add(1) as usize);
            for i in 0..len {
                let entry = list.add(4 * i);
                let key = text(*entry, *entry.add(1));
                let value = text(*entry.add(2), *entry.add(3));
                match (key, value.parse()) {
                    ("count", Ok(n)) => count = n,
                    ("bytes", Ok(n)) => bytes = n,
                    _ => {}
                }
            }
        }
        (count, bytes)
    }

    /// # Safety
    ///
    /// `ptr` and `len` must describe UTF-8 the host lowered.
    unsafe fn text(ptr: u32, len: u32) -> &'static str {
        // SAFETY: the caller's promise.
        unsafe {
            core::str::from_utf8_unchecked(core::slice::from_raw_parts(
                ptr as *const u8,
                len as usize,
            ))
        }
    }
}
