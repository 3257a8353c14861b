//! TEST FIXTURE, NOT AN EXAMPLE. A policy built against a WIT of its own
//! (`wit/policy.wit`) that differs from the contract in one type: ports are
//! `u32`. It answers with a rule on port 70000. The runtime must refuse it
//! at load time (type check), so this code never runs there.

wit_bindgen::generate!({
    path: "wit",
    world: "policy",
});

use wasmwall::policy::types::{
    Action, BaseChain, Chain, ChainPolicy, ChainType, Hook, MatchExpr, Matcher, Ports, Rule,
    Transport,
};

struct WrongTypes;

impl Guest for WrongTypes {
    fn evaluate(
        _state: WorldState,
        _event: Event,
        _config: Vec<(String, String)>,
    ) -> Result<Ruleset, String> {
        let above_u16 = Rule {
            matches: vec![MatchExpr {
                matcher: Matcher::Dport(Ports {
                    protocol: Transport::Tcp,
                    first: 70_000,
                    last: 70_000,
                }),
                negate: false,
            }],
            action: Action::Accept,
            counter: false,
            log_prefix: None,
            comment: None,
        };
        Ok(Ruleset {
            chains: vec![Chain {
                name: "input".into(),
                base: Some(BaseChain {
                    hook: Hook::Input,
                    type_: ChainType::Filter,
                    priority: 0,
                    policy: ChainPolicy::Accept,
                }),
                rules: vec![above_u16],
            }],
            sets: vec![],
            sysctls: vec![],
        })
    }
}

export!(WrongTypes);
