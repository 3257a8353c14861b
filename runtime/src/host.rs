//! The policy host: compiles policy components, and evaluates them in a fresh
//! sandboxed store per call, with a deadline and a memory cap.
//!
//! A policy gets no capability. Of WASI it sees only what language runtimes
//! need to start and to report a panic: an empty environment and argument
//! list, no preopened directories, closed stdin, stdout and stderr captured
//! into a small buffer that goes to the log, clocks it can read but not wait
//! on, and a deterministic random source (so that, e.g., a hash map's
//! iteration order cannot change between evaluations). Every other import
//! (sockets, HTTP, ...) is linked to a stub that traps (see [`crate::stubs`]).
//!
//! What one evaluation may use is capped: wall-clock time (an epoch
//! deadline), linear memory of all its instances together, table elements,
//! instances, and the bytes the host copies out of the policy's memory (its
//! answer, a log line), which are held to the memory cap too, so that an
//! answer pointing many times at the same bytes cannot make the host
//! allocate more than the policy itself could hold.
//!
//! With a [`CompileCache`], compiled components are kept on disk so that a
//! module is compiled once, not at every start.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use thiserror::Error;
use wasmtime::component::{Component, HasData, Linker, Resource, ResourceTable};
use wasmtime::{Engine, ResourceLimiter, Store};
use wasmtime_wasi::cli::{WasiCli, WasiCliView};
use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView};
use wasmtime_wasi::filesystem::{WasiFilesystem, WasiFilesystemView};
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi::p2::bindings::clocks::monotonic_clock;
use wasmtime_wasi::p2::bindings::sync as wasi;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::random::WasiRandom;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::cache::CompileCache;

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "policy",
    });
}

use bindings::wasmwall::policy::log::Level;
pub use bindings::wasmwall::policy::types as wit;

/// How often the epoch ticks; deadlines are rounded up to this.
const EPOCH_TICK: Duration = Duration::from_millis(5);
/// Bytes of stdout/stderr kept per evaluation.
const STDIO_CAPTURE: usize = 16 * 1024;
/// Longest log message a policy can write; longer ones are truncated.
const LOG_MESSAGE_MAX: usize = 4096;
/// Longest error message a policy can return; the rest is cut (it goes to
/// the log).
const REFUSAL_MAX: usize = 2048;
/// Table elements all of a policy's instances may hold together (the host
/// keeps a pointer for each). The Python and JavaScript policies use under
/// 10,000.
const TABLE_ELEMENTS_MAX: usize = 1 << 20;
/// Core instances, memories and tables one evaluation may create. The Python
/// policy, the largest here, has about 60 instances.
const INSTANCES_MAX: usize = 1000;
const MEMORIES_MAX: usize = 100;
const TABLES_MAX: usize = 100;

/// Limits applied to every evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time one evaluation may take.
    pub deadline: Duration,
    /// Linear memory a policy may use, in bytes: all its memories together.
    /// Also the most the host copies out of it in one call (its answer, a
    /// log line).
    pub memory_bytes: usize,
    /// Log lines a policy may write per evaluation.
    pub log_lines: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            deadline: Duration::from_millis(200),
            memory_bytes: 64 << 20,
            log_lines: 100,
        }
    }
}

#[derive(Debug, Error)]
pub enum HostError {
    #[error("cannot set up the WebAssembly engine")]
    Engine(#[source] wasmtime::Error),
    #[error("cannot read policy file {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a policy component: {why}")]
    NotComponent { path: String, why: String },
    #[error("{path} is not a valid WebAssembly component")]
    Compile {
        path: String,
        #[source]
        source: wasmtime::Error,
    },
    #[error(
        "{path} does not fit the wasmwall:policy world (it must export `evaluate` from wasmwall:policy@0.1.0)"
    )]
    WrongWorld {
        path: String,
        #[source]
        source: wasmtime::Error,
    },
    #[error("policy exceeded its deadline of {0:?}")]
    Deadline(Duration),
    #[error("{0}")]
    OverCap(CapExceeded),
    /// The cause only (e.g. "wasm trap: call stack exhausted"); the wasm
    /// backtrace is logged at debug level.
    #[error("policy trapped: {0}")]
    Trap(String),
    #[error("policy returned an error: {0}")]
    Refused(String),
}

/// A compiling and evaluating engine shared by all policies.
pub struct PolicyEngine {
    engine: Engine,
    limits: Limits,
    stop_ticker: Arc<AtomicBool>,
    cache: Option<CompileCache>,
}

impl PolicyEngine {
    pub fn new(limits: Limits) -> Result<Self, HostError> {
        let mut config = wasmtime::Config::new();
        config.epoch_interruption(true);
        config.wasm_component_model(true);
        let engine = Engine::new(&config).map_err(HostError::Engine)?;
        let stop_ticker = Arc::new(AtomicBool::new(false));
        let (weak, stop) = (engine.weak(), stop_ticker.clone());
        std::thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })
            .map_err(|e| HostError::Engine(e.into()))?;
        Ok(PolicyEngine {
            engine,
            limits,
            stop_ticker,
            cache: None,
        })
    }

    /// Keeps compiled components in `cache` from now on.
    pub fn set_cache(&mut self, cache: Option<CompileCache>) {
        self.cache = cache;
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Reads, compiles and type-checks a policy component.
    pub fn load(&self, name: &str, path: &Path) -> Result<LoadedPolicy, HostError> {
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| HostError::Read {
            path: shown.clone(),
            source,
        })?;
        self.load_bytes(name, &shown, &bytes)
    }

    pub fn load_bytes(
        &self,
        name: &str,
        shown: &str,
        bytes: &[u8],
    ) -> Result<LoadedPolicy, HostError> {
        // Name the two common mistakes plainly instead of a parser's dump.
        let not_component = |why: &str| HostError::NotComponent {
            path: shown.to_string(),
            why: why.to_string(),
        };
        if !bytes.starts_with(b"\0asm") {
            return Err(not_component(
                "it is not a WebAssembly file (no \\0asm header)",
            ));
        }
        if bytes.get(4..8) == Some(&[1, 0, 0, 0]) {
            return Err(not_component(
                "it is a core WebAssembly module; build the policy for wasm32-wasip2 (or wrap it with `wasm-tools component new`)",
            ));
        }
        let component = match &self.cache {
            Some(cache) => cache.load_or_compile(&self.engine, bytes),
            None => Component::new(&self.engine, bytes),
        }
        .map_err(|source| HostError::Compile {
            path: shown.to_string(),
            source,
        })?;
        let wrong_world = |source| HostError::WrongWorld {
            path: shown.to_string(),
            source,
        };
        let mut linker = Linker::<Sandbox>::new(&self.engine);
        link_sandbox(&mut linker).map_err(HostError::Engine)?;
        crate::stubs::define_missing_as_traps(&mut linker, &component, SANDBOX_INTERFACES)
            .map_err(wrong_world)?;
        let pre = linker.instantiate_pre(&component).map_err(wrong_world)?;
        let pre = bindings::PolicyPre::new(pre).map_err(wrong_world)?;
        Ok(LoadedPolicy {
            name: name.to_string(),
            pre,
        })
    }

    /// Calls the policy once, in a fresh store.
    pub fn evaluate(
        &self,
        policy: &LoadedPolicy,
        state: &wit::WorldState,
        event: &wit::Event,
        config: &[(String, String)],
    ) -> Result<wit::Ruleset, HostError> {
        let stdio = MemoryOutputPipe::new(STDIO_CAPTURE);
        let sandbox = Sandbox {
            wasi: WasiCtx::builder()
                .stdout(stdio.clone())
                .stderr(stdio.clone())
                .secure_random(wasmtime_wasi::Deterministic::new(vec![0x5a; 32]))
                .insecure_random(wasmtime_wasi::Deterministic::new(vec![0xa5; 32]))
                .insecure_random_seed(0)
                // Random bytes are made in the host before they are copied in.
                .max_random_size(self.limits.memory_bytes as u64)
                .build(),
            table: ResourceTable::new(),
            caps: StoreCaps::new(self.limits.memory_bytes),
            policy: policy.name.clone(),
            log_lines_left: self.limits.log_lines,
        };
        let mut store = Store::new(&self.engine, sandbox);
        store.limiter(|s| &mut s.caps);
        store.set_hostcall_fuel(self.limits.memory_bytes);
        let ticks = self
            .limits
            .deadline
            .as_nanos()
            .div_ceil(EPOCH_TICK.as_nanos()) as u64;
        store.set_epoch_deadline(ticks.max(1));
        store.epoch_deadline_trap();

        let result = policy
            .pre
            .instantiate(&mut store)
            .and_then(|p| p.call_evaluate(&mut store, state, event, config));
        let output = stdio.contents();
        if !output.is_empty() {
            let text = String::from_utf8_lossy(&output);
            tracing::warn!(policy = %policy.name, output = %text.trim_end(), "policy wrote to stdout/stderr");
        }
        match result {
            Ok(Ok(ruleset)) => Ok(ruleset),
            Ok(Err(mut message)) => {
                if message.len() > REFUSAL_MAX {
                    truncate(&mut message, REFUSAL_MAX);
                    message.push_str("... (cut)");
                }
                Err(HostError::Refused(message))
            }
            Err(e) => Err(self.trapped(&policy.name, e)),
        }
    }

    /// Names why a call ended early, in one line.
    fn trapped(&self, policy: &str, e: wasmtime::Error) -> HostError {
        if let Some(wasmtime::Trap::Interrupt) = e.downcast_ref::<wasmtime::Trap>() {
            return HostError::Deadline(self.limits.deadline);
        }
        if let Some(over) = e.downcast_ref::<CapExceeded>() {
            return HostError::OverCap(over.clone());
        }
        if let Some(wasmtime_wasi::I32Exit(status)) = e.downcast_ref() {
            return HostError::Trap(format!("the policy called exit (status {status})"));
        }
        tracing::debug!(policy, "the policy's trap in full: {e:?}");
        HostError::Trap(e.root_cause().to_string())
    }
}

impl Drop for PolicyEngine {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}

/// A compiled, type-checked policy, ready to be evaluated.
pub struct LoadedPolicy {
    name: String,
    pre: bindings::PolicyPre<Sandbox>,
}

impl LoadedPolicy {
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Per-evaluation store data.
struct Sandbox {
    wasi: WasiCtx,
    table: ResourceTable,
    caps: StoreCaps,
    policy: String,
    log_lines_left: usize,
}

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
struct StoreCaps {
    memory_cap: usize,
    memory_used: usize,
    table_elements_used: usize,
}

impl StoreCaps {
    fn new(memory_cap: usize) -> Self {
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

/// Clocks a policy can read but not wait on: a wait would block in the host,
/// where the deadline cannot interrupt it (`pollable.block` on a timer of an
/// hour blocks for an hour). A policy has nothing to wait for.
impl monotonic_clock::Host for Sandbox {
    fn now(&mut self) -> wasmtime::Result<monotonic_clock::Instant> {
        monotonic_clock::Host::now(&mut self.clocks())
    }

    fn resolution(&mut self) -> wasmtime::Result<monotonic_clock::Duration> {
        monotonic_clock::Host::resolution(&mut self.clocks())
    }

    fn subscribe_instant(
        &mut self,
        _when: monotonic_clock::Instant,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        cannot_wait("subscribe-instant")
    }

    fn subscribe_duration(
        &mut self,
        _duration: monotonic_clock::Duration,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        cannot_wait("subscribe-duration")
    }
}

fn cannot_wait(function: &str) -> wasmtime::Result<Resource<DynPollable>> {
    wasmtime::bail!(
        "the policy called `wasi:clocks/monotonic-clock#{function}` to sleep or wait, which the sandbox does not allow"
    )
}

impl WasiView for Sandbox {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl bindings::wasmwall::policy::types::Host for Sandbox {}

impl bindings::wasmwall::policy::log::Host for Sandbox {
    fn log(&mut self, level: Level, message: String) {
        if self.log_lines_left == 0 {
            return;
        }
        self.log_lines_left -= 1;
        let mut message = message;
        if message.len() > LOG_MESSAGE_MAX {
            truncate(&mut message, LOG_MESSAGE_MAX);
            message.push_str("... (truncated)");
        }
        let policy = self.policy.as_str();
        match level {
            Level::Trace => tracing::trace!(policy, "{message}"),
            Level::Debug => tracing::debug!(policy, "{message}"),
            Level::Info => tracing::info!(policy, "{message}"),
            Level::Warn => tracing::warn!(policy, "{message}"),
            Level::Error => tracing::error!(policy, "{message}"),
        }
        if self.log_lines_left == 0 {
            tracing::warn!(
                policy,
                "policy reached its log limit; further lines of this evaluation are dropped"
            );
        }
    }
}

/// Cuts `text` to at most `max` bytes, at a character boundary.
fn truncate(text: &mut String, max: usize) {
    let mut cut = max.min(text.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
}

struct HasSandbox;
impl HasData for HasSandbox {
    type Data<'a> = &'a mut Sandbox;
}

struct HasTable;
impl HasData for HasTable {
    type Data<'a> = &'a mut ResourceTable;
}

/// The interfaces [`link_sandbox`] defines. Imports of these, at any
/// semver-compatible version, are resolved by the linker; any other import
/// gets trapping stubs. `tests/languages.rs` keeps this in step with
/// `link_sandbox` for the interfaces the example policies import: one listed
/// but not linked fails their loading, and so does one linked but not listed
/// that the JavaScript policy imports (at the linker's exact version, so its
/// stub would redefine what is linked).
const SANDBOX_INTERFACES: &[&str] = &[
    "wasmwall:policy/types@0.1.0",
    "wasmwall:policy/log@0.1.0",
    "wasi:io/error@0.2.12",
    "wasi:io/poll@0.2.12",
    "wasi:io/streams@0.2.12",
    "wasi:clocks/wall-clock@0.2.12",
    "wasi:clocks/monotonic-clock@0.2.12",
    "wasi:random/random@0.2.12",
    "wasi:random/insecure@0.2.12",
    "wasi:random/insecure-seed@0.2.12",
    "wasi:cli/exit@0.2.12",
    "wasi:cli/environment@0.2.12",
    "wasi:cli/stdin@0.2.12",
    "wasi:cli/stdout@0.2.12",
    "wasi:cli/stderr@0.2.12",
    "wasi:cli/terminal-input@0.2.12",
    "wasi:cli/terminal-output@0.2.12",
    "wasi:cli/terminal-stdin@0.2.12",
    "wasi:cli/terminal-stdout@0.2.12",
    "wasi:cli/terminal-stderr@0.2.12",
    "wasi:filesystem/preopens@0.2.12",
    "wasi:filesystem/types@0.2.12",
];

/// Links the policy's own import and the inert subset of WASI described in
/// the module documentation. Sockets are deliberately absent.
fn link_sandbox(l: &mut Linker<Sandbox>) -> wasmtime::Result<()> {
    bindings::Policy::add_to_linker::<Sandbox, HasSandbox>(l, |s| s)?;

    wasmtime_wasi_io::bindings::wasi::io::error::add_to_linker::<Sandbox, HasTable>(l, |s| {
        &mut s.table
    })?;
    wasi::io::poll::add_to_linker::<Sandbox, HasTable>(l, |s| &mut s.table)?;
    wasi::io::streams::add_to_linker::<Sandbox, HasTable>(l, |s| &mut s.table)?;

    use wasmtime_wasi::p2::bindings::{cli, clocks, filesystem, random};
    clocks::wall_clock::add_to_linker::<Sandbox, WasiClocks>(
        l,
        <Sandbox as WasiClocksView>::clocks,
    )?;
    monotonic_clock::add_to_linker::<Sandbox, HasSandbox>(l, |s| s)?;
    random::random::add_to_linker::<Sandbox, WasiRandom>(l, |s| s.wasi.random())?;
    random::insecure::add_to_linker::<Sandbox, WasiRandom>(l, |s| s.wasi.random())?;
    random::insecure_seed::add_to_linker::<Sandbox, WasiRandom>(l, |s| s.wasi.random())?;
    cli::exit::add_to_linker::<Sandbox, WasiCli>(l, <Sandbox as WasiCliView>::cli)?;
    cli::environment::add_to_linker::<Sandbox, WasiCli>(l, <Sandbox as WasiCliView>::cli)?;
    cli::stdin::add_to_linker::<Sandbox, WasiCli>(l, <Sandbox as WasiCliView>::cli)?;
    cli::stdout::add_to_linker::<Sandbox, WasiCli>(l, <Sandbox as WasiCliView>::cli)?;
    cli::stderr::add_to_linker::<Sandbox, WasiCli>(l, <Sandbox as WasiCliView>::cli)?;
    cli::terminal_input::add_to_linker::<Sandbox, WasiCli>(l, <Sandbox as WasiCliView>::cli)?;
    cli::terminal_output::add_to_linker::<Sandbox, WasiCli>(l, <Sandbox as WasiCliView>::cli)?;
    cli::terminal_stdin::add_to_linker::<Sandbox, WasiCli>(l, <Sandbox as WasiCliView>::cli)?;
    cli::terminal_stdout::add_to_linker::<Sandbox, WasiCli>(l, <Sandbox as WasiCliView>::cli)?;
    cli::terminal_stderr::add_to_linker::<Sandbox, WasiCli>(l, <Sandbox as WasiCliView>::cli)?;
    // No directory is ever preopened, so these can reach no file.
    filesystem::preopens::add_to_linker::<Sandbox, WasiFilesystem>(
        l,
        <Sandbox as WasiFilesystemView>::filesystem,
    )?;
    wasi::filesystem::types::add_to_linker::<Sandbox, WasiFilesystem>(
        l,
        <Sandbox as WasiFilesystemView>::filesystem,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(bytes: &[u8]) -> String {
        let engine = PolicyEngine::new(Limits::default()).unwrap();
        match engine.load_bytes("p", "p.wasm", bytes) {
            Ok(_) => panic!("loaded"),
            Err(e) => crate::runtime::error_chain(&e),
        }
    }

    #[test]
    fn rejects_a_file_that_is_not_wasm() {
        let err = load(b"[[policy]]\n");
        assert!(
            err.contains("p.wasm") && err.contains("not a WebAssembly file"),
            "{err}"
        );
    }

    #[test]
    fn rejects_a_core_module() {
        let err = load(b"\0asm\x01\0\0\0");
        assert!(
            err.contains("core WebAssembly module") && err.contains("wasm32-wasip2"),
            "{err}"
        );
    }

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

    #[test]
    fn rejects_a_truncated_component() {
        let err = load(b"\0asm\x0d\0\x01\0\x01\x05");
        assert!(
            err.contains("p.wasm is not a valid WebAssembly component"),
            "{err}"
        );
    }
}
