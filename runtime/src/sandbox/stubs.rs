//! Trapping stubs for the imports the sandbox does not provide.
//!
//! Language toolchains import more of WASI than a policy uses: componentize-py
//! imports sockets, for example. Such a component must still load, and a call
//! into anything the sandbox lacks must trap.
//!
//! `Linker::define_unknown_imports_as_traps` cannot be used for this (as of
//! wasmtime 48, see wasmtime issue #10663): for every imported instance it
//! opens an instance under the import's exact name, so an import of
//! `wasi:cli/environment@0.2.9` gets a stub instance even though the linker
//! defines the semver-compatible `@0.2.12`, and the stub shadows it. It also
//! redefines resources that an instance merely re-exports (`wasi:io/streams`
//! re-exports `error` from `wasi:io/error`) as new types, which then do not
//! match the real ones. So here:
//!
//! - an imported instance the sandbox defines, at any semver-compatible
//!   version, is left alone for the linker to resolve;
//! - any other imported instance gets a stub instance under its exact name:
//!   each function traps when called, each resource the component sees for
//!   the first time becomes an empty host resource, and each resource it
//!   already imported elsewhere (a re-export) is not defined again, so the
//!   linker resolves it to that first definition.

use wasmtime::Engine;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Linker, LinkerInstance, ResourceType};

/// Defines a trapping stub for every import of `component` that is not one of
/// `provided`: interface names with a version (`wasi:io/poll@0.2.12`), as the
/// linker defines them.
pub fn define_missing_as_traps<T: 'static>(
    linker: &mut Linker<T>,
    component: &Component,
    provided: &[&str],
) -> wasmtime::Result<()> {
    let engine = component.engine().clone();
    let ty = component.component_type();
    let mut seen = Vec::new();
    let mut root = linker.root();
    for (name, import) in ty.imports(&engine) {
        let ComponentItem::ComponentInstance(instance) = &import.ty else {
            // Policies import interfaces only; a bare function or resource
            // import is left to the type check, which names it.
            continue;
        };
        if provided.iter().any(|p| same_interface(p, name)) {
            // Resources of provided instances are real: remember them so
            // that re-exports in stubbed instances are recognised.
            for (_, export) in instance.exports(&engine) {
                if let ComponentItem::Resource(r) = export.ty {
                    seen.push(r);
                }
            }
            continue;
        }
        tracing::debug!(
            import = name,
            "not provided by the sandbox: linked to trapping stubs"
        );
        let mut stub = root.instance(name)?;
        stub_instance(&mut stub, name, instance, &engine, &mut seen)?;
    }
    Ok(())
}

fn stub_instance<T: 'static>(
    linker: &mut LinkerInstance<'_, T>,
    instance_name: &str,
    instance: &wasmtime::component::types::ComponentInstance,
    engine: &Engine,
    seen: &mut Vec<ResourceType>,
) -> wasmtime::Result<()> {
    for (name, export) in instance.exports(engine) {
        match export.ty {
            ComponentItem::ComponentFunc(_) => {
                let what = format!("{instance_name}#{name}");
                linker.func_new(name, move |_, _, _, _| {
                    wasmtime::bail!(
                        "the policy called `{what}`, which the sandbox does not provide"
                    )
                })?;
            }
            // A resource seen before is a re-export: left to the linker.
            ComponentItem::Resource(r) if !seen.contains(&r) => {
                seen.push(r);
                linker.resource(name, ResourceType::host::<Stubbed>(), |_, _| Ok(()))?;
            }
            ComponentItem::ComponentInstance(inner) => {
                let what = format!("{instance_name}/{name}");
                let mut nested = linker.instance(name)?;
                stub_instance(&mut nested, &what, &inner, engine, seen)?;
            }
            // Types need no definition; nothing else occurs in WIT
            // interfaces.
            _ => {}
        }
    }
    Ok(())
}

/// The host type behind every stubbed resource. No value of it is ever made:
/// every function that could make one traps.
struct Stubbed;

/// Whether a linker definition named `provided` resolves an import named
/// `import`: the same name, or the same interface at a semver-compatible
/// version (same major version, or same minor version below 1.0), which is
/// how wasmtime's linker looks imports up.
fn same_interface(provided: &str, import: &str) -> bool {
    if provided == import {
        return true;
    }
    match (version_family(provided), version_family(import)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// "wasi:io/poll@0.2.9" -> ("wasi:io/poll", "0.2"); "a:b/c@1.4.0" -> ("a:b/c",
/// "1"); none for unversioned names, 0.0.x and pre-releases, which only match
/// exactly.
fn version_family(name: &str) -> Option<(&str, String)> {
    let (interface, version) = name.split_once('@')?;
    let mut parts = version.split('.');
    let (major, minor, patch) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let number = |s: &str| {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    let (major, minor, _) = (number(major)?, number(minor)?, number(patch)?);
    match (major, minor) {
        (0, 0) => None,
        (0, minor) => Some((interface, format!("0.{minor}"))),
        (major, _) => Some((interface, major.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semver_compatible_names_match() {
        assert!(same_interface(
            "wasi:cli/environment@0.2.12",
            "wasi:cli/environment@0.2.9"
        ));
        assert!(same_interface("wasi:io/poll@0.2.12", "wasi:io/poll@0.2.12"));
        assert!(same_interface("a:b/c@1.4.0", "a:b/c@1.0.2"));
        assert!(same_interface("wasmwall:policy/log", "wasmwall:policy/log"));
    }

    #[test]
    fn incompatible_names_do_not_match() {
        assert!(!same_interface("wasi:io/poll@0.2.12", "wasi:io/poll@0.3.0"));
        assert!(!same_interface(
            "wasi:io/poll@0.2.12",
            "wasi:io/streams@0.2.12"
        ));
        assert!(!same_interface("a:b/c@1.4.0", "a:b/c@2.0.0"));
        assert!(!same_interface("a:b/c@0.0.1", "a:b/c@0.0.2"));
        assert!(!same_interface(
            "wasi:http/types@0.2.0-rc-2023-10-25",
            "wasi:http/types@0.2.0"
        ));
        assert!(!same_interface("wasi:io/poll", "wasi:io/poll@0.2.0"));
    }
}
