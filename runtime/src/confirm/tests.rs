//! The record of a change waiting for confirmation (its file, and who wins
//! when `confirm` and the deadline meet) and the decisions on it.

use std::time::Duration;

use super::*;
use crate::confirm::record::Confirmed;

fn confirmation(deadline_ms: u64) -> Confirmation {
    Confirmation {
        version: VERSION,
        table: "wasmwall".into(),
        what: "apply of /etc/wasmwall/wasmwall.toml".into(),
        waiter: Waiter::Apply,
        pid: 42,
        applied_at_ms: 1_000,
        deadline_ms,
        previous: Some(DesiredTable::default()),
        previous_state: Some(State::new(None, "wasmwall".into(), false)),
        sysctls: vec![SavedSysctl::new("net.ipv4.ip_forward", "0")],
    }
}

#[test]
fn the_record_round_trips_and_confirm_or_claim_wins_once() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state").join("host.wasmwall.json");
    assert_eq!(record::find(&state).unwrap(), None);
    assert_eq!(record::confirm(&state).unwrap(), Confirmed::Nothing);
    let c = confirmation(121_000);
    record::save(&state, &c).unwrap();
    assert_eq!(
        record::find(&state).unwrap(),
        Some(Found {
            confirmation: c.clone(),
            claimed: false
        })
    );
    // Confirmed first: the deadline then finds nothing to claim.
    assert_eq!(record::confirm(&state).unwrap(), Confirmed::Done(c.clone()));
    assert_eq!(record::claim(&state).unwrap(), None);
    assert_eq!(record::find(&state).unwrap(), None);

    // Claimed first: a confirmation is too late, and the claimed record is
    // what a start finds.
    record::save(&state, &c).unwrap();
    assert_eq!(record::claim(&state).unwrap(), Some(c.clone()));
    assert_eq!(
        record::confirm(&state).unwrap(),
        Confirmed::TooLate(c.clone())
    );
    assert!(record::find(&state).unwrap().unwrap().claimed);
    record::remove(&state).unwrap();
    assert_eq!(record::find(&state).unwrap(), None);

    std::fs::write(record::pending_path(&state), b"{ torn").unwrap();
    let e = record::find(&state).unwrap_err().to_string();
    assert!(e.contains("corrupt") && e.contains(".confirm"), "{e}");
}

#[test]
fn a_record_found_at_start_is_rolled_back_whatever_its_deadline() {
    let c = confirmation(121_000);
    assert_eq!(at_start(None, 0), AtStart::Nothing);
    for (now, claimed, says) in [
        (2_000, false, "not confirmed yet"),
        (200_000, false, "its deadline passed"),
        (2_000, true, "its rollback was cut short"),
    ] {
        let AtStart::RollBack(reason) = at_start(Some((&c, claimed)), now) else {
            panic!("rolls back");
        };
        assert!(
            reason.contains("left pending by a process that ended")
                && reason.contains(says)
                && reason.contains("pid 42"),
            "{reason}"
        );
    }
    assert_eq!(
        deadline_reason(&c, &Streak::default()),
        "apply of /etc/wasmwall/wasmwall.toml was not confirmed within 120 s"
    );
}

#[test]
fn passes_in_a_row_confirm_and_failures_in_a_row_roll_back() {
    let settings = ConfirmSettings {
        within: Some(Duration::from_secs(60)),
        check_passes: 2,
        check_failures: 2,
        ..ConfirmSettings::default()
    };
    let mut s = Streak::default();
    assert_eq!(s.record(Ok(()), &settings), Verdict::Wait);
    assert_eq!(s.record(Err("down".into()), &settings), Verdict::Wait);
    assert_eq!(
        s.record(Ok(()), &settings),
        Verdict::Wait,
        "the run starts again"
    );
    assert!(matches!(s.record(Ok(()), &settings), Verdict::Confirmed(_)));

    let mut s = Streak::default();
    assert_eq!(s.record(Err("a".into()), &settings), Verdict::Wait);
    let Verdict::RollBack(why) = s.record(Err("refused".into()), &settings) else {
        panic!("rolls back");
    };
    assert!(why.contains("2 time(s) in a row: refused"), "{why}");
    assert_eq!(s.last_failure(), Some("refused"));
}
