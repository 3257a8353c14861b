//! `wasmwall trace`'s pure parts: the filter of the packets to follow
//! (`filter`), the trace table it puts its rule in (`table`), and the
//! telling of a packet's path from the kernel's trace events (`path`).
//! No I/O happens here.

pub mod filter;
pub mod path;
pub mod table;
