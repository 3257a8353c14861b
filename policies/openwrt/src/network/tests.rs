use super::*;

fn devs(n: &Networks, name: &str) -> Option<Vec<String>> {
    n.devices(name).map(<[String]>::to_vec)
}

fn v(names: &[&str]) -> Option<Vec<String>> {
    Some(names.iter().map(|s| s.to_string()).collect())
}

/// OpenWrt's own default /etc/config/network (21.02 and later): a
/// `config device` bridge the lan names, a wan on a port.
#[test]
fn openwrts_default_network() {
    let n = Networks::from_config(
        Some(
            "\
config interface 'loopback'
\toption device 'lo'
\toption proto 'static'
\toption ipaddr '127.0.0.1'
\toption netmask '255.0.0.0'

config globals 'globals'
\toption ula_prefix 'fd12:3456:789a::/48'

config device
\toption name 'br-lan'
\toption type 'bridge'
\tlist ports 'lan1'
\tlist ports 'lan2'

config interface 'lan'
\toption device 'br-lan'
\toption proto 'static'
\toption ipaddr '192.168.1.1'
\toption netmask '255.255.255.0'

config interface 'wan'
\toption device 'wan'
\toption proto 'dhcp'

config interface 'wan6'
\toption device 'wan'
\toption proto 'dhcpv6'
",
        ),
        None,
    )
    .unwrap();
    assert_eq!(devs(&n, "loopback"), v(&["lo"]));
    assert_eq!(devs(&n, "lan"), v(&["br-lan"]));
    assert_eq!(devs(&n, "wan"), v(&["wan"]));
    assert_eq!(devs(&n, "wan6"), v(&["wan"]));
    assert_eq!(devs(&n, "globals"), None);
    assert_eq!(devs(&n, "guest"), None);
}

#[test]
fn older_ifname_options_and_bridges() {
    let n = Networks::from_config(
        Some(
            "\
config interface 'lan'
\toption type 'bridge'
\toption ifname 'eth0.1'
config interface 'guest'
\toption ifname 'eth1 eth2'
config interface 'iot'
\tlist ifname 'eth3'
\tlist ifname 'eth4'
config interface 'wan'
\toption ifname 'eth0.2'
config interface 'both'
\toption device 'eth5'
\toption ifname 'eth6'
config interface 'bridged'
\toption type 'bridge'
\toption device 'eth7'
config interface 'blank'
\toption device ''
\toption ifname 'eth8'
config interface 'none'
\toption proto 'none'
config interface 'empty'
\toption ifname ''
",
        ),
        None,
    )
    .unwrap();
    assert_eq!(devs(&n, "lan"), v(&["br-lan"]));
    assert_eq!(devs(&n, "guest"), v(&["br-guest"]));
    assert_eq!(devs(&n, "iot"), v(&["br-iot"]));
    assert_eq!(devs(&n, "wan"), v(&["eth0.2"]));
    assert_eq!(devs(&n, "both"), v(&["eth5"]), "device wins over ifname");
    assert_eq!(devs(&n, "bridged"), v(&["br-bridged"]));
    assert_eq!(devs(&n, "blank"), v(&["eth8"]));
    assert_eq!(devs(&n, "none"), None);
    assert_eq!(devs(&n, "empty"), None);
}

#[test]
fn protocols_that_make_their_own_device() {
    let cases = [
        ("pppoe", Some("pppoe-up")),
        ("pppoa", Some("pppoa-up")),
        ("ppp", Some("ppp-up")),
        ("3g", Some("3g-up")),
        ("pptp", Some("pptp-up")),
        ("l2tp", Some("l2tp-up")),
        ("6in4", Some("6in4-up")),
        ("6to4", Some("6to4-up")),
        ("6rd", Some("6rd-up")),
        ("dslite", Some("ds-up")),
        ("map", Some("map-up")),
        ("gre", Some("gre4-up")),
        ("grev6", Some("gre6-up")),
        ("gretap", Some("gre4t-up")),
        ("grev6tap", Some("gre6t-up")),
        ("vti", Some("vti-up")),
        ("vtiv6", Some("vti6-up")),
        ("wireguard", Some("up")),
        ("dhcp", None),
        ("static", None),
    ];
    for (proto, own) in cases {
        let plain =
            format!("config interface 'up'\n\toption proto '{proto}'\n\toption device 'eth0.2'\n");
        let n = Networks::from_config(Some(&plain), None).unwrap();
        assert_eq!(devs(&n, "up"), v(&[own.unwrap_or("eth0.2")]), "{proto}");
        let bridged = format!("{plain}\toption type 'bridge'\n");
        let n = Networks::from_config(Some(&bridged), None).unwrap();
        assert_eq!(
            devs(&n, "up"),
            v(&[own.unwrap_or("br-up")]),
            "{proto} bridged"
        );
    }
}

#[test]
fn aliases_take_the_other_interfaces_device() {
    let n = Networks::from_config(
        Some(
            "\
config interface 'wan'
\toption proto 'pppoe'
\toption device 'eth0.2'
config interface 'wan6'
\toption device '@wan'
\toption proto 'dhcpv6'
config interface 'wan6b'
\toption ifname '@wan6'
config interface 'lonely'
\toption device '@wan6b'
\toption proto 'static'
",
        ),
        None,
    )
    .unwrap();
    assert_eq!(devs(&n, "wan6"), v(&["pppoe-wan"]));
    assert_eq!(devs(&n, "wan6b"), v(&["pppoe-wan"]));
    assert_eq!(devs(&n, "lonely"), v(&["pppoe-wan"]));
}

#[test]
fn the_devices_value_gives_and_overrides() {
    let n = Networks::from_config(
        Some("config interface 'lan'\n\toption device 'br-lan'\nconfig interface 'wan'\n\toption device 'eth0'\n"),
        Some("wan=pppoe-wan \t vpn=wg0,wg1\n\n  guest=br-guest\n"),
    )
    .unwrap();
    assert_eq!(devs(&n, "lan"), v(&["br-lan"]));
    assert_eq!(devs(&n, "wan"), v(&["pppoe-wan"]));
    assert_eq!(devs(&n, "vpn"), v(&["wg0", "wg1"]));
    assert_eq!(devs(&n, "guest"), v(&["br-guest"]));
    let only = Networks::from_config(None, Some("lan=br-lan")).unwrap();
    assert_eq!(devs(&only, "lan"), v(&["br-lan"]));
    assert_eq!(devs(&only, "wan"), None);
    let nothing = Networks::from_config(None, Some("  \n")).unwrap();
    assert_eq!(nothing, Networks::default());
    assert_eq!(
        Networks::from_config(None, None).unwrap(),
        Networks::default()
    );
}

#[test]
fn unnamed_interfaces_and_other_sections_are_passed_over() {
    let n = Networks::from_config(
        Some("config interface\n\toption device 'eth0'\nconfig device\n\toption name 'eth1'\n"),
        None,
    )
    .unwrap();
    assert_eq!(n, Networks::default());
}

#[test]
fn network_errors_name_the_line() {
    let cases = [
        (
            "config interface 'lan'\n\toption device 'x\n",
            2,
            "network line 2: a single quote is not closed",
        ),
        (
            "config interface 'lan'\n\tlist device 'eth0'\n",
            2,
            "network line 2, @interface[0] (lan) option 'device': takes one value, not a list",
        ),
        (
            "config interface 'lan'\n\tlist proto 'static'\n",
            2,
            "option 'proto': takes one value, not a list",
        ),
        (
            "config interface 'lan'\n\tlist type 'bridge'\n",
            2,
            "option 'type': takes one value, not a list",
        ),
        (
            "config interface 'lan'\n\toption device 'a/b'\n",
            2,
            "option 'device': 'a/b' is not a device name: 1 to 15 characters, without '/', ':' or spaces",
        ),
        (
            "config interface 'lan'\n\toption device 'eth0:1'\n",
            2,
            "'eth0:1' is not a device name",
        ),
        (
            "config interface 'lan'\n\toption device '..'\n",
            2,
            "'..' is not a device name",
        ),
        (
            "config interface 'lan'\n\toption device 'abcdefghijklmnop'\n",
            2,
            "'abcdefghijklmnop' is not a device name",
        ),
        (
            "config interface 'lan'\n\toption ifname 'a:b'\n",
            2,
            "option 'ifname': 'a:b' is not a device name",
        ),
        (
            "config interface 'lan'\n\n\toption device '@wan'\n",
            3,
            "option 'device': '@wan' names no interface of this file",
        ),
        (
            "config interface 'a'\n\toption device '@b'\nconfig interface 'b'\n\toption ifname '@a'\n",
            4,
            "network line 4, @interface[1] (b) option 'ifname': '@a' is an alias loop: a -> b -> a",
        ),
        (
            "config interface 'a'\n\toption device '@a'\n",
            2,
            "'@a' is an alias loop: a -> a",
        ),
    ];
    for (text, line, words) in cases {
        let err = Networks::from_config(Some(text), None).unwrap_err();
        assert_eq!((err.file, err.line), ("network", line), "{text:?}: {err}");
        assert!(err.to_string().contains(words), "{text:?}: {err}");
    }
}

#[test]
fn devices_errors_name_the_line() {
    let cases = [
        (
            "lan",
            1,
            "devices line 1: 'lan' is not NAME=DEVICE[,DEVICE...] (as in lan=br-lan)",
        ),
        (
            "lan=br-lan\nwan",
            2,
            "devices line 2: 'wan' is not NAME=DEVICE",
        ),
        (
            "=eth0",
            1,
            "'=eth0': '' is not an interface name (letters, digits and '_')",
        ),
        (
            "wan-6=eth0",
            1,
            "'wan-6=eth0': 'wan-6' is not an interface name",
        ),
        ("lan=", 1, "'lan=': '' is not a device name"),
        ("lan=a,,b", 1, "'lan=a,,b': '' is not a device name"),
        ("lan=a/b", 1, "'lan=a/b': 'a/b' is not a device name"),
        (
            "lan=br-lan\n\nlan=eth1",
            3,
            "devices line 3: 'lan=eth1': interface 'lan' is already given at line 1",
        ),
    ];
    for (text, line, words) in cases {
        let err = Networks::from_config(None, Some(text)).unwrap_err();
        assert_eq!((err.file, err.line), ("devices", line), "{text:?}: {err}");
        assert!(err.to_string().contains(words), "{text:?}: {err}");
    }
    // A valid network file does not hide an invalid `devices`.
    let err = Networks::from_config(
        Some("config interface 'lan'\n\toption device 'eth0'\n"),
        Some("x"),
    )
    .unwrap_err();
    assert_eq!(err.file, "devices");
}
