//! The policy host: compiles policy components, and evaluates them in a fresh
//! sandboxed store per call, with a deadline and a memory cap.
//!
//! A policy gets no capability. Of WASI it sees only what language runtimes
//! need to start and to report a panic: an empty environment and argument
//! list, no preopened directories, closed stdin, stdout and stderr captured
//! into a small buffer that goes to the log, clocks it can read but not wait
//! on, and a deterministic random source (so that, e.g., a hash map's
//! iteration order cannot change between evaluations). Every other import
//! (sockets, HTTP, ...) is linked to a stub that traps (see [`stubs`]).
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

pub mod cache;
mod caps;
mod stubs;
pub(crate) mod v01;
mod wasi;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use thiserror::Error;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

use crate::bindings::{self, wit};
use crate::text::{Quoted, escape};
use cache::CompileCache;
pub use caps::CapExceeded;
use caps::StoreCaps;
use wasi::{SANDBOX_INTERFACES, Sandbox, link_sandbox};

/// How often the epoch ticks; deadlines are rounded up to this.
const EPOCH_TICK: Duration = Duration::from_millis(5);
/// Bytes of stdout/stderr kept per evaluation.
const STDIO_CAPTURE: usize = 16 * 1024;
/// Longest error message a policy can return; the rest is cut (it goes to
/// the log).
const REFUSAL_MAX: usize = 2048;

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
    #[error(transparent)]
    Read(#[from] crate::files::FileError),
    #[error("{path} is not a policy component: {why}")]
    NotComponent { path: String, why: String },
    #[error("{path} is not a valid WebAssembly component")]
    Compile {
        path: String,
        #[source]
        source: wasmtime::Error,
    },
    #[error(
        "{path} does not fit the wasmwall:policy world (it must export `evaluate` from wasmwall:policy@0.2.0 or 0.1.0)"
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
    #[error("policy trapped: {}", escape(.0))]
    Trap(String),
    /// The policy's own words (cut), escaped wherever they are shown. Not
    /// quoted: fixtures' `expected.err` hold them as written, and on one
    /// line they follow the policy's name, which they cannot change.
    #[error("policy returned an error: {}", escape(.0))]
    Refused(String),
}

/// A compiling engine shared by all policies.
pub struct PolicyEngine {
    shared: Arc<Shared>,
    cache: Option<CompileCache>,
}

/// What the engine and every policy it loaded share: the wasmtime engine,
/// whose epoch a thread of its own ticks, and the limits.
struct Shared {
    engine: Engine,
    limits: Limits,
    stop_ticker: Arc<AtomicBool>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
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
            shared: Arc::new(Shared {
                engine,
                limits,
                stop_ticker,
            }),
            cache: None,
        })
    }

    /// Keeps compiled components in `cache` from now on.
    pub fn set_cache(&mut self, cache: Option<CompileCache>) {
        self.cache = cache;
    }

    pub fn limits(&self) -> Limits {
        self.shared.limits
    }

    /// Reads, compiles and type-checks a policy component.
    pub fn load(&self, name: &str, path: &Path) -> Result<LoadedPolicy, HostError> {
        let shown = path.display().to_string();
        let bytes = crate::files::read(path, crate::files::Kind::Policy)?;
        self.load_bytes(name, &shown, &bytes)
    }

    /// Compiles and type-checks a policy component; `shown` names it in
    /// errors.
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
        let engine = &self.shared.engine;
        let component = match &self.cache {
            Some(cache) => cache.load_or_compile(engine, bytes),
            None => Component::new(engine, bytes),
        }
        .map_err(|source| HostError::Compile {
            path: shown.to_string(),
            source,
        })?;
        let wrong_world = |source| HostError::WrongWorld {
            path: shown.to_string(),
            source,
        };
        let mut linker = Linker::<Sandbox>::new(engine);
        link_sandbox(&mut linker).map_err(HostError::Engine)?;
        stubs::define_missing_as_traps(&mut linker, &component, SANDBOX_INTERFACES)
            .map_err(wrong_world)?;
        let pre = linker.instantiate_pre(&component).map_err(wrong_world)?;
        // The version of the contract's types the component imports says
        // which `evaluate` it exports.
        let pre = match contract_version(engine, &component).as_deref() {
            Some("0.1.0") => {
                Contract::V01(bindings::v01::PolicyPre::new(pre).map_err(wrong_world)?)
            }
            Some(v) if v != "0.2.0" => {
                return Err(wrong_world(wasmtime::format_err!(
                    "it was built against wasmwall:policy@{v}; this runtime serves 0.2.0 and 0.1.0"
                )));
            }
            _ => Contract::V02(bindings::PolicyPre::new(pre).map_err(wrong_world)?),
        };
        Ok(LoadedPolicy {
            name: name.to_string(),
            pre,
            shared: self.shared.clone(),
        })
    }
}

/// The version of `wasmwall:policy` whose interfaces the component
/// imports, if it imports one.
fn contract_version(engine: &Engine, component: &Component) -> Option<String> {
    component
        .component_type()
        .imports(engine)
        .find_map(|(name, _)| {
            name.strip_prefix("wasmwall:policy/types@")
                .map(str::to_string)
        })
}

/// The contract version a component was built against.
enum Contract {
    V02(bindings::PolicyPre<Sandbox>),
    V01(bindings::v01::PolicyPre<Sandbox>),
}

/// A compiled, type-checked policy, ready to be evaluated.
pub struct LoadedPolicy {
    name: String,
    pre: Contract,
    shared: Arc<Shared>,
}

impl LoadedPolicy {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The version of `wasmwall:policy` the component was built against.
    pub fn contract(&self) -> &'static str {
        match self.pre {
            Contract::V02(_) => "0.2.0",
            Contract::V01(_) => "0.1.0",
        }
    }

    /// Calls the policy once, in a fresh store.
    pub fn evaluate(
        &self,
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
                .max_random_size(self.shared.limits.memory_bytes as u64)
                .build(),
            table: ResourceTable::new(),
            caps: StoreCaps::new(self.shared.limits.memory_bytes),
            policy: self.name.clone(),
            log_lines_left: self.shared.limits.log_lines,
        };
        let mut store = Store::new(&self.shared.engine, sandbox);
        store.limiter(|s| &mut s.caps);
        store.set_hostcall_fuel(self.shared.limits.memory_bytes);
        let ticks = self
            .shared
            .limits
            .deadline
            .as_nanos()
            .div_ceil(EPOCH_TICK.as_nanos()) as u64;
        store.set_epoch_deadline(ticks.max(1));
        store.epoch_deadline_trap();

        let result = match &self.pre {
            Contract::V02(pre) => pre
                .instantiate(&mut store)
                .and_then(|p| p.call_evaluate(&mut store, state, event, config)),
            Contract::V01(pre) => {
                let (state, event) = (v01::state(state), v01::event(event));
                pre.instantiate(&mut store)
                    .and_then(|p| p.call_evaluate(&mut store, &state, &event, config))
                    .map(|answer| answer.map(v01::ruleset))
            }
        };
        let output = stdio.contents();
        if !output.is_empty() {
            let text = String::from_utf8_lossy(&output);
            tracing::warn!(policy = self.name.as_str(), output = %Quoted(text.trim_end()), "policy wrote to stdout/stderr");
        }
        match result {
            Ok(Ok(ruleset)) => Ok(ruleset),
            Ok(Err(mut message)) => {
                if crate::text::cut(&mut message, REFUSAL_MAX) {
                    message.push_str("... (cut)");
                }
                Err(HostError::Refused(message))
            }
            Err(e) => Err(self.trapped(e)),
        }
    }

    /// Names why a call ended early, in one line.
    fn trapped(&self, e: wasmtime::Error) -> HostError {
        if let Some(wasmtime::Trap::Interrupt) = e.downcast_ref::<wasmtime::Trap>() {
            return HostError::Deadline(self.shared.limits.deadline);
        }
        if let Some(over) = e.downcast_ref::<CapExceeded>() {
            return HostError::OverCap(over.clone());
        }
        if let Some(wasmtime_wasi::I32Exit(status)) = e.downcast_ref() {
            return HostError::Trap(format!("the policy called exit (status {status})"));
        }
        // The backtrace names the policy's functions as its name section
        // says, which can hold any text: escaped, on one line.
        tracing::debug!(
            policy = self.name.as_str(),
            "the policy's trap in full: {}",
            escape(&format!("{e:?}"))
        );
        HostError::Trap(e.root_cause().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(bytes: &[u8]) -> String {
        let engine = PolicyEngine::new(Limits::default()).unwrap();
        match engine.load_bytes("p", "p.wasm", bytes) {
            Ok(_) => panic!("loaded"),
            Err(e) => crate::text::error_chain(&e),
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
    fn rejects_a_truncated_component() {
        let err = load(b"\0asm\x0d\0\x01\0\x01\x05");
        assert!(
            err.contains("p.wasm is not a valid WebAssembly component"),
            "{err}"
        );
    }
}
