//! The kernel adapter's conntrack client and route look-up against the
//! real kernel, called through the library's `Kernel` trait from inside a
//! namespace. Real UDP, TCP and ICMP traffic (IPv4 and IPv6) from a
//! "client" namespace makes conntrack entries in a "router" namespace,
//! where a small nft ruleset with `ct` matches has conntrack running (and
//! a DNAT, a conntrack zone and a mark). `flows` must find each with its
//! tuples; `cut_flows` must delete exactly the entries it is given,
//! which the `conntrack` CLI confirms, and nothing for a stale id or an
//! entry already gone; `route_oif` must name the veth for its peer, the
//! loopback for a local address, and nothing without a route.

use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use wasmwall::flows::{Flow, proto, status};
use wasmwall::kernel::{Kernel, KernelError, Netlink};
use wasmwall_e2e::{Netns, ping, skip_unless_root, temp_dir, veth_pair, wait_until};

const TIMEOUT: Duration = Duration::from_secs(5);

/// In the router: conntrack on input (the `ct state` match), IPv6 UDP to
/// port 5302 in zone 5 (both directions, before conntrack) with mark 42,
/// and UDP to port 5399 sent on to the local port 5303.
const RULESET: &str = "\
table inet ct16 {
    chain raw_pre {
        type filter hook prerouting priority -300;
        meta nfproto ipv6 udp dport 5302 ct zone set 5
    }
    chain raw_out {
        type filter hook output priority -300;
        meta nfproto ipv6 udp sport 5302 ct zone set 5
    }
    chain input {
        type filter hook input priority 0;
        udp dport 5302 ct mark set 42
        ct state new,established,related accept
    }
}
table ip nat16 {
    chain pre {
        type nat hook prerouting priority -100;
        udp dport 5399 dnat to 10.77.0.1:5303
    }
}
";

/// Two namespaces joined by a veth: client `wan0` (10.77.0.2, fd77::2) and
/// router `lan0` (10.77.0.1, fd77::1), the router running [`RULESET`].
struct Lab {
    client: Netns,
    router: Netns,
}

impl Lab {
    fn new() -> Lab {
        let client = Netns::new("ct-client");
        let router = Netns::new("ct-router");
        veth_pair(
            (&router, "lan0", "10.77.0.1/24"),
            (&client, "wan0", "10.77.0.2/24"),
        );
        for (netns, dev, addr) in [
            (&router, "lan0", "fd77::1/64"),
            (&client, "wan0", "fd77::2/64"),
        ] {
            netns.run(["ip", "-6", "addr", "add", addr, "dev", dev, "nodad"]);
        }
        let dir = temp_dir();
        let file = dir.path().join("ruleset.nft");
        std::fs::write(&file, RULESET).expect("write the ruleset");
        router.run(["nft", "-f", file.to_str().unwrap()]);
        Lab { client, router }
    }

    /// The router's kernel adapter; every call goes through [`Lab::kernel`].
    fn adapter(&self) -> Netlink {
        self.router
            .enter(Netlink::new)
            .expect("open the adapter in the router")
    }

    /// Runs `f` on the adapter from inside the router's namespace.
    fn kernel<T: Send>(&self, kernel: &mut Netlink, f: impl FnOnce(&mut Netlink) -> T + Send) -> T {
        self.router.enter(|| f(kernel))
    }

    /// The router's conntrack table as the CLI lists it (all zones).
    fn conntrack_cli(&self, args: &[&str]) -> String {
        let mut argv = vec!["conntrack", "-L"];
        argv.extend_from_slice(args);
        self.router.run(argv).stdout
    }

    /// A UDP datagram from `from` (in the client) to `to`, answered by a
    /// socket of the router bound to `served_at` (`to`, unless DNAT sends
    /// it elsewhere), so that the entry has seen its reply.
    fn udp_exchange(&self, from: SocketAddr, to: SocketAddr, served_at: SocketAddr) {
        let server = self
            .router
            .enter(|| UdpSocket::bind(served_at))
            .expect("bind the router's UDP socket");
        let client = self
            .client
            .enter(|| UdpSocket::bind(from))
            .expect("bind the client's UDP socket");
        for socket in [&server, &client] {
            socket.set_read_timeout(Some(TIMEOUT)).unwrap();
        }
        let mut buf = [0; 16];
        client.send_to(b"ping", to).expect("send");
        let (_, peer) = server.recv_from(&mut buf).expect("the router receives");
        server.send_to(b"pong", peer).expect("answer");
        let (_, answered_by) = client
            .recv_from(&mut buf)
            .expect("the client gets the answer");
        assert_eq!(answered_by, to, "the answer comes from where it was sent");
    }
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// The entry whose original direction goes from `src` to `dst`.
fn find(flows: &[Flow], protocol: u8, src: SocketAddr, dst: SocketAddr) -> Option<&Flow> {
    flows.iter().find(|f| {
        f.orig.proto == protocol
            && f.orig.src == src.ip()
            && f.orig.dst == dst.ip()
            && f.orig.ports == Some((src.port(), dst.port()))
    })
}

fn describe(flows: &[Flow]) -> String {
    flows
        .iter()
        .map(|f| {
            format!(
                "{f} status={:#x} id={:?} zone={} mark={}",
                f.status, f.id, f.zone, f.mark
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Lines of a `conntrack -L` listing that mention `needle`.
fn lines_with(listing: &str, needle: &str) -> usize {
    listing.lines().filter(|l| l.contains(needle)).count()
}

#[test]
fn flows_are_read_and_exactly_the_given_ones_are_cut() {
    if skip_unless_root() {
        return;
    }
    let lab = Lab::new();
    let mut kernel = lab.adapter();

    let (udp_from, udp_to) = (addr("10.77.0.2:40001"), addr("10.77.0.1:5301"));
    lab.udp_exchange(udp_from, udp_to, udp_to);
    let (v6_from, v6_to) = (addr("[fd77::2]:40002"), addr("[fd77::1]:5302"));
    lab.udp_exchange(v6_from, v6_to, v6_to);
    let (dnat_from, dnat_to) = (addr("10.77.0.2:40003"), addr("10.77.0.1:5399"));
    lab.udp_exchange(dnat_from, dnat_to, addr("10.77.0.1:5303"));
    let tcp_to = addr("10.77.0.1:5380");
    let listener = lab.router.listen(tcp_to);
    let tcp = lab
        .client
        .enter(|| TcpStream::connect_timeout(&tcp_to, TIMEOUT))
        .expect("connect over TCP");
    let tcp_from = tcp.local_addr().unwrap();
    let _accepted = wait_until("the router to accept", TIMEOUT, || {
        listener.accept().map_err(|e| e.to_string())
    });
    ping(
        &lab.client,
        "10.77.0.2".parse().unwrap(),
        "10.77.0.1".parse().unwrap(),
        TIMEOUT,
    )
    .expect("ping the router");

    let flows = lab
        .kernel(&mut kernel, |k| k.flows())
        .expect("read the flows");
    let table = describe(&flows);
    let udp = find(&flows, proto::UDP, udp_from, udp_to)
        .unwrap_or_else(|| panic!("no UDP flow from {udp_from}:\n{table}"))
        .clone();
    assert_eq!(udp.reply.src, udp_to.ip());
    assert_eq!(udp.reply.dst, udp_from.ip());
    assert_eq!(udp.reply.ports, Some((udp_to.port(), udp_from.port())));
    assert_eq!(
        udp.status & status::SEEN_REPLY,
        status::SEEN_REPLY,
        "{table}"
    );
    assert_eq!(udp.status & status::CONFIRMED, status::CONFIRMED, "{table}");
    assert!(udp.id.is_some(), "the kernel gives every entry an id");
    assert_eq!((udp.zone, udp.mark), (0, 0));

    let v6 = find(&flows, proto::UDP, v6_from, v6_to)
        .unwrap_or_else(|| panic!("no IPv6 UDP flow:\n{table}"))
        .clone();
    assert_eq!((v6.zone, v6.mark), (5, 42), "{table}");
    assert_eq!(v6.reply.ports, Some((v6_to.port(), v6_from.port())));

    let dnat = find(&flows, proto::UDP, dnat_from, dnat_to)
        .unwrap_or_else(|| panic!("no DNATed flow:\n{table}"))
        .clone();
    assert!(dnat.dst_nat(), "{table}");
    // The reply direction comes from where DNAT sent it.
    assert_eq!(dnat.reply.src, "10.77.0.1".parse::<IpAddr>().unwrap());
    assert_eq!(dnat.reply.ports, Some((5303, dnat_from.port())));
    assert_eq!(
        dnat.to_string(),
        "udp 10.77.0.2:40003 -> 10.77.0.1:5399 (dnat to 10.77.0.1:5303)"
    );

    let tcp_flow = find(&flows, proto::TCP, tcp_from, tcp_to)
        .unwrap_or_else(|| panic!("no TCP flow from {tcp_from}:\n{table}"))
        .clone();
    assert_eq!(
        tcp_flow.status & status::ASSURED,
        status::ASSURED,
        "{table}"
    );

    let icmp = flows
        .iter()
        .find(|f| f.orig.proto == proto::ICMP && f.orig.src == udp_from.ip())
        .unwrap_or_else(|| panic!("no ICMP flow:\n{table}"))
        .clone();
    let (ty, code, id) = icmp.orig.icmp.expect("an echo request's type, code and id");
    assert_eq!((ty, code, id), (8, 0, std::process::id() as u16));
    assert_eq!(icmp.reply.icmp, Some((0, 0, id)));
    assert_eq!(icmp.orig.ports, None);

    // One cut deletes that entry and leaves the others.
    let listing = lab.conntrack_cli(&["-p", "udp"]);
    assert_eq!(lines_with(&listing, "sport=40001 "), 1, "{listing}");
    assert_eq!(
        lab.kernel(&mut kernel, |k| k.cut_flows(std::slice::from_ref(&udp)))
            .unwrap(),
        1
    );
    let listing = lab.conntrack_cli(&[]);
    assert_eq!(lines_with(&listing, "sport=40001 "), 0, "{listing}");
    for port in [
        "sport=40002 ",
        "sport=40003 ",
        &format!("sport={} ", tcp_from.port()),
    ] {
        assert_eq!(lines_with(&listing, port), 1, "{port} in:\n{listing}");
    }
    // Already gone: no error, nothing counted.
    assert_eq!(
        lab.kernel(&mut kernel, |k| k.cut_flows(std::slice::from_ref(&udp)))
            .unwrap(),
        0
    );

    // A stale read of an entry since replaced has another id: the entry
    // with that tuple now stays.
    let mut stale = tcp_flow.clone();
    stale.id = tcp_flow.id.map(|id| id ^ 1);
    assert_eq!(
        lab.kernel(&mut kernel, |k| k.cut_flows(&[stale])).unwrap(),
        0
    );
    let listing = lab.conntrack_cli(&["-p", "tcp"]);
    assert_eq!(
        lines_with(&listing, &format!("sport={} ", tcp_from.port())),
        1,
        "{listing}"
    );

    // Several at once, one in zone 5; the UDP one is gone already.
    let several = [
        udp.clone(),
        v6.clone(),
        dnat.clone(),
        tcp_flow.clone(),
        icmp.clone(),
    ];
    assert_eq!(
        lab.kernel(&mut kernel, |k| k.cut_flows(&several)).unwrap(),
        4
    );
    let listing = lab.conntrack_cli(&[]);
    for needle in [
        "sport=40002 ",
        "sport=40003 ",
        &format!("sport={} ", tcp_from.port()),
        "icmp ",
    ] {
        assert_eq!(lines_with(&listing, needle), 0, "{needle} in:\n{listing}");
    }
    let flows = lab.kernel(&mut kernel, |k| k.flows()).unwrap();
    for cut in &several {
        assert!(
            !flows.iter().any(|f| f.orig == cut.orig),
            "{cut} is still listed:\n{}",
            describe(&flows)
        );
    }
}

#[test]
fn many_flows_are_read_and_cut_in_one_call() {
    if skip_unless_root() {
        return;
    }
    const COUNT: u16 = 300;
    let lab = Lab::new();
    let mut kernel = lab.adapter();
    // Datagrams to closed ports: each makes an entry (unreplied).
    let from = addr("10.77.0.2:40100");
    let socket = lab
        .client
        .enter(|| UdpSocket::bind(from))
        .expect("bind the client's UDP socket");
    for port in 0..COUNT {
        socket
            .send_to(b"x", ("10.77.0.1", 6000 + port))
            .expect("send");
    }
    let ours = |flows: &[Flow]| -> Vec<Flow> {
        flows
            .iter()
            .filter(|f| f.orig.src == from.ip() && f.orig.sport() == Some(from.port()))
            .cloned()
            .collect()
    };
    let flows = wait_until("an entry for every datagram", TIMEOUT, || {
        let flows = ours(
            &lab.kernel(&mut kernel, |k| k.flows())
                .map_err(|e| e.to_string())?,
        );
        match flows.len() {
            n if n == usize::from(COUNT) => Ok(flows),
            n => Err(format!("{n} entries")),
        }
    });
    assert!(flows.iter().all(|f| f.status & status::SEEN_REPLY == 0));
    let listing = lab.conntrack_cli(&["-p", "udp"]);
    assert_eq!(lines_with(&listing, "sport=40100 "), usize::from(COUNT));
    assert_eq!(
        lab.kernel(&mut kernel, |k| k.cut_flows(&flows)).unwrap(),
        usize::from(COUNT)
    );
    let listing = lab.conntrack_cli(&["-p", "udp"]);
    assert_eq!(lines_with(&listing, "sport=40100 "), 0, "{listing}");
    assert!(ours(&lab.kernel(&mut kernel, |k| k.flows()).unwrap()).is_empty());
    assert_eq!(lab.kernel(&mut kernel, |k| k.cut_flows(&flows)).unwrap(), 0);
}

#[test]
fn route_oif_names_the_interface_a_destination_is_reached_through() {
    if skip_unless_root() {
        return;
    }
    let lab = Lab::new();
    let mut kernel = lab.adapter();
    let index = |dev: &str| -> u32 {
        let path = format!("/sys/class/net/{dev}/ifindex");
        lab.router
            .run(["cat", &path])
            .stdout
            .trim()
            .parse()
            .unwrap()
    };
    let (lan, lo) = (index("lan0"), index("lo"));
    lab.router
        .run(["ip", "route", "add", "blackhole", "198.51.100.0/24"]);
    lab.router
        .run(["ip", "route", "add", "prohibit", "192.0.2.0/24"]);
    let expected = [
        ("10.77.0.2", Some(lan)),
        ("10.77.0.200", Some(lan)),
        ("fd77::2", Some(lan)),
        ("10.77.0.1", Some(lo)),
        ("fd77::1", Some(lo)),
        ("127.0.0.1", Some(lo)),
        // No default route.
        ("203.0.113.9", None),
        ("2001:db8::1", None),
        ("198.51.100.1", None),
        ("192.0.2.1", None),
    ];
    for (dst, oif) in expected {
        let dst: IpAddr = dst.parse().unwrap();
        assert_eq!(
            lab.kernel(&mut kernel, |k| k.route_oif(dst)).unwrap(),
            oif,
            "{dst}"
        );
    }
}

#[test]
fn sockets_opened_at_first_use_refuse_another_namespace() {
    if skip_unless_root() {
        return;
    }
    let lab = Lab::new();
    let mut kernel = lab.adapter();
    // This thread is in the root namespace: the adapter must not open its
    // conntrack or routing socket here.
    assert!(matches!(
        kernel.flows(),
        Err(KernelError::OtherNamespace { .. })
    ));
    assert!(matches!(
        kernel.route_oif("10.77.0.2".parse().unwrap()),
        Err(KernelError::OtherNamespace { .. })
    ));
    // Once opened in the router, the socket stays there, whichever thread
    // uses it.
    lab.kernel(&mut kernel, |k| k.flows())
        .expect("read the flows");
    let (from, to) = (addr("10.77.0.2:40004"), addr("10.77.0.1:5304"));
    lab.udp_exchange(from, to, to);
    let flows = kernel.flows().expect("read the router's flows");
    assert!(
        find(&flows, proto::UDP, from, to).is_some(),
        "{}",
        describe(&flows)
    );
}
