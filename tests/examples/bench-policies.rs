//! Measures the port-forward policy in each language: component size, first
//! load (compile), load from the compile cache, and evaluation time per
//! event (fresh store + instantiate + call, as the runtime does it). Prints
//! a Markdown table for BENCHMARKS.md.
//!
//! Run: cargo run --release -p wasmwall-e2e --example bench-policies
//! (builds the policies first, through the crate's build script).

use std::time::{Duration, Instant};

use wasmwall::fixtures;
use wasmwall::sandbox::cache::{CompileCache, DEFAULT_MAX_BYTES};
use wasmwall::sandbox::{Limits, PolicyEngine};
use wasmwall_e2e::{PORT_FORWARD_LANGUAGES, policy_wasm, repo_root};

const COMPILES: usize = 3;
const CACHED_LOADS: usize = 10;
const EVALUATIONS: usize = 300;

fn main() {
    let fixture =
        fixtures::load(&repo_root().join("policies/port-forward/fixtures/default-config"))
            .expect("the default-config fixture");
    println!(
        "| policy | component size | first load (compile) | cached load | evaluation per event |"
    );
    println!("| --- | ---: | ---: | ---: | ---: |");
    for (language, file) in PORT_FORWARD_LANGUAGES {
        let wasm = policy_wasm(file);
        let size = std::fs::metadata(&wasm).expect("policy file").len();

        let uncached = PolicyEngine::new(Limits::default()).expect("engine");
        let compile = median(COMPILES, || {
            uncached.load("port-forward", &wasm).expect("load");
        });

        let cache_dir = private_temp_dir();
        let mut cached = PolicyEngine::new(Limits::default()).expect("engine");
        cached.set_cache(Some(
            CompileCache::open(cache_dir.path(), DEFAULT_MAX_BYTES).expect("cache"),
        ));
        let policy = cached
            .load("port-forward", &wasm)
            .expect("first load fills the cache");
        let cached_load = median(CACHED_LOADS, || {
            cached.load("port-forward", &wasm).expect("load");
        });

        // The answer is checked once, so that a broken build cannot make a
        // fast figure.
        let outcome = fixtures::evaluate(
            &policy,
            &fixtures::Judge::defaults("port-forward"),
            &fixture,
        );
        assert!(
            matches!(&fixture.expected, Some(e) if fixtures::matches(e, &outcome)),
            "{language}: unexpected outcome {outcome:?}"
        );
        let (state, event) = (fixture.state.to_wit(), fixture.event.to_wit());
        let evaluation = median(EVALUATIONS, || {
            policy
                .evaluate(&state, &event, &fixture.config)
                .expect("evaluate");
        });

        println!(
            "| {language} (`{file}.wasm`) | {} | {} | {} | {} |",
            mebibytes(size),
            show(compile),
            show(cached_load),
            show(evaluation)
        );
    }
    println!();
    println!(
        "Medians of {COMPILES} compiles, {CACHED_LOADS} cached loads and {EVALUATIONS} evaluations. \
         A load reads the file, compiles it or takes it from the cache, and type-checks it against \
         the world; an evaluation is a fresh store, instantiation and one call of `evaluate`, \
         with the deadline and memory cap armed."
    );
}

fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let started = Instant::now();
            f();
            started.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

fn show(d: Duration) -> String {
    if d >= Duration::from_secs(1) {
        format!("{:.2} s", d.as_secs_f64())
    } else if d >= Duration::from_millis(1) {
        format!("{:.1} ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{:.0} µs", d.as_secs_f64() * 1e6)
    }
}

fn mebibytes(bytes: u64) -> String {
    if bytes < 1 << 20 {
        format!("{:.0} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
    }
}

fn private_temp_dir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
        .expect("chmod 700");
    dir
}
