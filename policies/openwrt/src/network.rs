//! The devices of OpenWrt's networks (interfaces): what a zone's `network`
//! names resolve to, read from `/etc/config/network` and from the policy's
//! `devices` config value. fw4 asks netifd for each interface's L3 device
//! as it runs; a policy cannot, so these rules stand in for it.
//!
//! From `/etc/config/network`, for each `config interface 'NAME'`:
//! - a `proto` that makes its own device gives that device, whatever the
//!   interface's `device` (which is then the device beneath it):
//!   `pppoe-NAME`, `pppoa-NAME`, `ppp-NAME` (ppp), `3g-NAME`,
//!   `pptp-NAME`, `l2tp-NAME`, `6in4-NAME`, `6to4-NAME`, `6rd-NAME`,
//!   `ds-NAME` (dslite), `map-NAME`, `gre4-NAME` (gre), `gre6-NAME`
//!   (grev6), `gre4t-NAME` (gretap), `gre6t-NAME` (grev6tap), `vti-NAME`,
//!   `vti6-NAME` (vtiv6), and `NAME` itself (wireguard);
//! - else `option type 'bridge'` gives the bridge `br-NAME`;
//! - else `option device 'X'` gives X, and `device '@OTHER'` the devices
//!   of the interface OTHER (an alias); X may be a port or the `name` of a
//!   `config device` section (a bridge, a VLAN): either way the device is
//!   called X, so `config device` sections need no reading;
//! - else the older `ifname`: one device gives it (`@OTHER` as above),
//!   several (a `list`, or an `option` with spaces) the bridge `br-NAME`;
//! - else the interface has no device of its own (`proto none` without
//!   one, say) and stays unresolved.
//!
//! `devices` gives interfaces' devices outright, and wins over the file
//! for the interfaces it names: entries separated by spaces, tabs or line
//! ends, each `NAME=DEVICE[,DEVICE...]`, as in `lan=br-lan wan=eth0
//! vpn=wg0,wg1`.
//!
//! An interface neither source knows has no devices here (`devices` gives
//! None): the caller warns of it, where fw4 silently matches nothing.
//! Unnamed `config interface` sections, which no zone can name, are
//! passed over. Errors name the line of `network` or of `devices`.

use std::collections::BTreeMap;

use crate::error::Error;
use crate::uci::{self, Opt, Section};

/// Each interface's L3 devices.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Networks {
    devices: BTreeMap<String, Vec<String>>,
}

/// The protocols whose interface is a device netifd makes and names.
const OWN_DEVICE: &[(&str, &str)] = &[
    ("pppoe", "pppoe-"),
    ("pppoa", "pppoa-"),
    ("ppp", "ppp-"),
    ("3g", "3g-"),
    ("pptp", "pptp-"),
    ("l2tp", "l2tp-"),
    ("6in4", "6in4-"),
    ("6to4", "6to4-"),
    ("6rd", "6rd-"),
    ("dslite", "ds-"),
    ("map", "map-"),
    ("gre", "gre4-"),
    ("grev6", "gre6-"),
    ("gretap", "gre4t-"),
    ("grev6tap", "gre6t-"),
    ("vti", "vti-"),
    ("vtiv6", "vti6-"),
    ("wireguard", ""),
];

impl Networks {
    pub fn from_config(
        network_uci: Option<&str>,
        devices: Option<&str>,
    ) -> Result<Networks, Error> {
        let mut networks = match network_uci {
            Some(text) => from_network_file(text)?,
            None => Networks::default(),
        };
        if let Some(text) = devices {
            networks.devices.extend(parse_devices(text)?);
        }
        Ok(networks)
    }

    /// The devices of the interface `name`; None when it is unresolved.
    pub fn devices(&self, name: &str) -> Option<&[String]> {
        self.devices.get(name).map(Vec::as_slice)
    }
}

/// What one interface section says of its device, before aliases.
enum Source<'a> {
    Devices(Vec<String>),
    Alias(&'a str, &'a Opt),
    Nothing,
}

fn from_network_file(text: &str) -> Result<Networks, Error> {
    let sections = uci::parse(text).map_err(|e| Error {
        file: "network",
        line: e.line,
        place: String::new(),
        message: e.message,
    })?;
    let mut sources: BTreeMap<&str, (&Section, Source)> = BTreeMap::new();
    for s in sections.iter().filter(|s| s.kind == "interface") {
        if let Some(name) = s.name.as_deref() {
            sources.insert(name, (s, source(name, s)?));
        }
    }
    let mut devices = BTreeMap::new();
    for name in sources.keys() {
        if let Some(found) = resolve(&sources, &mut vec![name])? {
            devices.insert(name.to_string(), found);
        }
    }
    Ok(Networks { devices })
}

fn source<'a>(name: &str, s: &'a Section) -> Result<Source<'a>, Error> {
    let single = |opt: &'a Opt| -> Result<&'a str, Error> {
        if opt.is_list {
            Err(Error::option(s, opt, "takes one value, not a list").in_file("network"))
        } else {
            Ok(opt.values[0].as_str())
        }
    };
    if let Some(opt) = s.get("proto") {
        let proto = single(opt)?;
        if let Some((_, prefix)) = OWN_DEVICE.iter().find(|(p, _)| *p == proto) {
            return Ok(Source::Devices(vec![format!("{prefix}{name}")]));
        }
    }
    if let Some(opt) = s.get("type")
        && single(opt)? == "bridge"
    {
        return Ok(Source::Devices(vec![format!("br-{name}")]));
    }
    let named = |opt: &'a Opt, dev: &'a str| -> Result<Source<'a>, Error> {
        match dev.strip_prefix('@') {
            Some(other) => Ok(Source::Alias(other, opt)),
            None => {
                check_device(dev).map_err(|m| Error::option(s, opt, m).in_file("network"))?;
                Ok(Source::Devices(vec![dev.to_string()]))
            }
        }
    };
    if let Some(opt) = s.get("device") {
        let dev = single(opt)?;
        if !dev.is_empty() {
            return named(opt, dev);
        }
    }
    if let Some(opt) = s.get("ifname") {
        let ifnames: Vec<&str> = opt
            .values
            .iter()
            .flat_map(|v| v.split([' ', '\t']))
            .filter(|w| !w.is_empty())
            .collect();
        match ifnames.as_slice() {
            [] => {}
            [one] => return named(opt, one),
            _ => return Ok(Source::Devices(vec![format!("br-{name}")])),
        }
    }
    Ok(Source::Nothing)
}

/// The devices of the interface at the end of `path`, through aliases.
fn resolve<'a>(
    sources: &BTreeMap<&'a str, (&Section, Source<'a>)>,
    path: &mut Vec<&'a str>,
) -> Result<Option<Vec<String>>, Error> {
    let name = *path.last().expect("the path holds the interface");
    let (s, source) = &sources[name];
    match source {
        Source::Devices(d) => Ok(Some(d.clone())),
        Source::Nothing => Ok(None),
        Source::Alias(other, opt) => {
            let bad = |m: String| Err(Error::option(s, opt, m).in_file("network"));
            if !sources.contains_key(other) {
                return bad(format!("'@{other}' names no interface of this file"));
            }
            let looped = path.contains(other);
            path.push(other);
            if looped {
                return bad(format!(
                    "'@{other}' is an alias loop: {}",
                    path.join(" -> ")
                ));
            }
            resolve(sources, path)
        }
    }
}

/// What Linux takes as a device name.
fn check_device(dev: &str) -> Result<(), String> {
    let ok = (1..=15).contains(&dev.len())
        && dev != "."
        && dev != ".."
        && !dev.contains(['/', ':'])
        && !dev.chars().any(char::is_whitespace);
    if ok {
        Ok(())
    } else {
        Err(format!(
            "'{dev}' is not a device name: 1 to 15 characters, without '/', ':' or spaces"
        ))
    }
}

/// The `devices` value: `NAME=DEVICE[,DEVICE...]` entries.
fn parse_devices(text: &str) -> Result<BTreeMap<String, Vec<String>>, Error> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut first_line: BTreeMap<String, usize> = BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let bad = |message: String| Error {
            file: "devices",
            line,
            place: String::new(),
            message,
        };
        for entry in raw.split([' ', '\t']).filter(|w| !w.is_empty()) {
            let Some((name, devs)) = entry.split_once('=') else {
                return Err(bad(format!(
                    "'{entry}' is not NAME=DEVICE[,DEVICE...] (as in lan=br-lan)"
                )));
            };
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(bad(format!(
                    "'{entry}': '{name}' is not an interface name (letters, digits and '_')"
                )));
            }
            if let Some(at) = first_line.get(name) {
                return Err(bad(format!(
                    "'{entry}': interface '{name}' is already given at line {at}"
                )));
            }
            let devs: Vec<String> = devs.split(',').map(str::to_string).collect();
            for dev in &devs {
                check_device(dev).map_err(|m| bad(format!("'{entry}': {m}")))?;
            }
            first_line.insert(name.to_string(), line);
            out.insert(name.to_string(), devs);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
