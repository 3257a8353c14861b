//! TEST FIXTURE, NOT AN EXAMPLE. The seed's mistake on purpose: port 80 on
//! lan0 is DNATed to 127.0.0.1:4000 and let in, but the policy does not ask
//! for `net.ipv4.conf.lan0.route_localnet = 1`, so the kernel's routing
//! drops every such packet as a martian destination. `wasmwall why` must
//! name the sysctl (tests/why.rs).

use wasmwall_sdk::{
    Chain, ChainPolicy, Config, Event, Hook, Policy, Rule, Ruleset, Transport, WorldState,
};

struct SeedMistake;

impl Policy for SeedMistake {
    fn evaluate(_state: &WorldState, _event: &Event, _config: &Config) -> Result<Ruleset, String> {
        let input = Chain::filter("input", Hook::Input, 0)
            .policy(ChainPolicy::Drop)
            .rule(
                Rule::new()
                    .daddr("127.0.0.1")
                    .dport_range(Transport::Tcp, 4000, 4000)
                    .comment("the server")
                    .accept(),
            );
        let prerouting = Chain::nat("prerouting", Hook::Prerouting, -100).rule(
            Rule::new()
                .iifname("lan0")
                .dport_range(Transport::Tcp, 80, 80)
                .comment("seed forward")
                .dnat("127.0.0.1:4000"),
        );
        Ok(Ruleset::new().chain(input).chain(prerouting))
    }
}

wasmwall_sdk::export_policy!(SeedMistake);
