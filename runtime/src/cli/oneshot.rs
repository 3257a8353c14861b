//! `wasmwall apply` and `wasmwall plan`: the configured policies evaluated
//! once on this machine's interfaces, and the difference applied in one
//! batch (held to confirmation with `--confirm-within`: see `confirm`), or
//! shown. A change a process that ended left waiting for confirmation is
//! rolled back first.

use std::process::ExitCode;

use anyhow::{Result, bail};

use super::ConfigArgs;
use super::confirm::ApplyArgs;
use super::resolve::{self, Resolved};
use crate::config::Config;
use crate::engine::{Evaluation, Firewall, Policies, Target};
use crate::kernel::Netlink;
use crate::world::{self, Event, WorldState};

/// The firewall of `config` on the real kernel, with the table snapshot
/// (written only by the lock holder).
fn firewall(config: &Config, target: Target, writable: bool) -> Result<Firewall<Netlink>> {
    let policies = Policies::compile(config)?;
    let mut firewall = Firewall::new(Netlink::new()?, target, config.sysctls.clone(), policies)
        .with_snapshot(writable);
    firewall.set_cut_flows(config.cut_flows);
    Ok(firewall)
}

/// Evaluates the policies on the interfaces and kernel features as they
/// are now.
fn evaluate(firewall: &mut Firewall<Netlink>) -> Result<Evaluation> {
    let interfaces = world::read_interfaces_now()?;
    let names = world::interface_names(&interfaces);
    let features = crate::kernel::detect_features(firewall.kernel_mut(), &names);
    // No leases and no neighbours: a one-shot command cannot follow them,
    // and rules made from them would go stale unseen (`run` follows them).
    let world = WorldState {
        interfaces,
        features,
        ..WorldState::default()
    };
    Ok(firewall.evaluate(&world, &Event::Startup))
}

/// An error that sums up the policies that failed (each was logged).
fn failures(evaluation: &Evaluation) -> Result<()> {
    match evaluation.failed.as_slice() {
        [] => Ok(()),
        [one] => bail!("{one}"),
        many => bail!(
            "{} policies failed ({}); the others were applied",
            many.len(),
            many.iter()
                .map(|f| f.policy.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

pub fn apply(args: &ApplyArgs) -> Result<ExitCode> {
    let Resolved { config, target } = resolve::load_config(&args.config)?;
    let _lock = resolve::lock(&target)?;
    let mut firewall = firewall(&config, target, true)?;
    firewall.roll_back_left_pending()?;
    let mut evaluation = evaluate(&mut firewall)?;
    let Some(within) = args.confirm_within else {
        firewall.reconcile(&mut evaluation, "start", true)?;
        failures(&evaluation)?;
        return Ok(ExitCode::SUCCESS);
    };
    let confirmed = super::confirm::apply_and_wait(
        &mut firewall,
        &mut evaluation,
        &config.confirm,
        &args.config.config,
        within,
    )?;
    if !confirmed {
        return Ok(ExitCode::from(crate::confirm::ROLLED_BACK_STATUS));
    }
    failures(&evaluation)?;
    Ok(ExitCode::SUCCESS)
}

pub fn plan(args: &ConfigArgs) -> Result<ExitCode> {
    let Resolved { config, target } = resolve::load_config(args)?;
    let mut firewall = firewall(&config, target, false)?;
    let mut evaluation = evaluate(&mut firewall)?;
    let pending = firewall.pending(&mut evaluation)?;
    print!("{}", pending.tx);
    for s in &pending.sysctls {
        println!("sysctl {s}");
    }
    match &pending.flows {
        Ok(cuts) => {
            for c in cuts {
                println!("cut flow {c}");
            }
        }
        Err(why) => eprintln!("wasmwall: which flows the change would cut is not known: {why}"),
    }
    if !evaluation.failed.is_empty() {
        eprintln!("wasmwall: the plan leaves the failed policies' rules as they are");
        failures(&evaluation)?;
    }
    if pending.is_empty() {
        eprintln!("wasmwall: nothing to change");
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "wasmwall: pending: {}{}{}",
            pending.tx.summary(),
            match pending.sysctls.len() {
                0 => String::new(),
                n => format!(", {n} sysctl(s)"),
            },
            match &pending.flows {
                Ok(cuts) if !cuts.is_empty() => format!(", {} flow(s) to cut", cuts.len()),
                _ => String::new(),
            }
        );
        Ok(ExitCode::from(2))
    }
}
