//! The store of one evaluation and what it links: the policy's own imports
//! (its log), and the inert subset of WASI that language runtimes need to
//! start (see the module above). Sockets and everything else are absent:
//! [`super::stubs`] makes any other import trap.

use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime_wasi::cli::{WasiCli, WasiCliView};
use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView};
use wasmtime_wasi::filesystem::{WasiFilesystem, WasiFilesystemView};
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi::p2::bindings::clocks::monotonic_clock;
use wasmtime_wasi::p2::bindings::sync as wasi;
use wasmtime_wasi::random::WasiRandom;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::caps::StoreCaps;
use crate::bindings;
use crate::bindings::log::Level;
use crate::text::Quoted;

/// Longest log message a policy can write; longer ones are truncated.
const LOG_MESSAGE_MAX: usize = 4096;

/// Per-evaluation store data.
pub(super) struct Sandbox {
    pub(super) wasi: WasiCtx,
    pub(super) table: ResourceTable,
    pub(super) caps: StoreCaps,
    pub(super) policy: String,
    pub(super) log_lines_left: usize,
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

impl bindings::wit::Host for Sandbox {}
impl bindings::v01::wit::Host for Sandbox {}

/// 0.1's log is 0.2's, with the same levels.
impl bindings::v01::log::Host for Sandbox {
    fn log(&mut self, level: bindings::v01::log::Level, message: String) {
        use bindings::v01::log::Level as Old;
        let level = match level {
            Old::Trace => Level::Trace,
            Old::Debug => Level::Debug,
            Old::Info => Level::Info,
            Old::Warn => Level::Warn,
            Old::Error => Level::Error,
        };
        bindings::log::Host::log(self, level, message);
    }
}

impl bindings::log::Host for Sandbox {
    fn log(&mut self, level: Level, message: String) {
        if self.log_lines_left == 0 {
            return;
        }
        self.log_lines_left -= 1;
        let mut message = message;
        if crate::text::cut(&mut message, LOG_MESSAGE_MAX) {
            message.push_str("... (truncated)");
        }
        let policy = self.policy.as_str();
        // Quoted: escaped, so a newline cannot start a line of its own, and
        // between quotes it cannot close, so a `policy="other"` in it never
        // passes for the field that names the policy.
        let message = Quoted(&message);
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
pub(super) const SANDBOX_INTERFACES: &[&str] = &[
    "wasmwall:policy/types@0.2.0",
    "wasmwall:policy/log@0.2.0",
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
pub(super) fn link_sandbox(l: &mut Linker<Sandbox>) -> wasmtime::Result<()> {
    bindings::Policy::add_to_linker::<Sandbox, HasSandbox>(l, |s| s)?;
    bindings::v01::Policy::add_to_linker::<Sandbox, HasSandbox>(l, |s| s)?;

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
