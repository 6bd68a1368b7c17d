use cmg_proto::location::{Candidate, CandidateKind, Locality};

use super::*;

fn mp(name: &str, locality: Locality) -> Candidate {
    Candidate {
        kind: CandidateKind::Intranet,
        name: name.into(),
        url: format!("https://{name}.corp.example"),
        token_url: None,
        locality,
    }
}

fn three() -> Selection {
    let mut s = Selection::default();
    s.replace(
        vec![
            mp("near", Locality::CurrentGroup),
            mp("neighbour", Locality::Neighbour),
            mp("far", Locality::SiteDefault),
        ],
        0,
    );
    s
}

#[test]
fn the_nearest_is_picked_first() {
    let s = three();
    assert_eq!(s.current().map(|t| t.candidate.name.as_str()), Some("near"));
}

#[test]
fn four_failures_in_ten_minutes_keep_the_mp_and_the_fifth_moves_on() {
    let mut s = three();
    for i in 0..4 {
        assert!(!s.fail("near", 100 + i * 60), "failure {i} moved");
    }
    assert_eq!(s.current.as_deref(), Some("near"));
    assert!(
        s.fail("near", 400),
        "the fifth failure within 10 minutes moves on"
    );
    assert_eq!(s.current.as_deref(), Some("neighbour"));
}

#[test]
fn failures_spread_over_more_than_ten_minutes_do_not_move() {
    let mut s = three();
    // One failure every 3 minutes: never 5 within any 10-minute window.
    for i in 0..10 {
        assert!(!s.fail("near", i * 180), "failure {i} moved");
    }
    assert_eq!(s.current.as_deref(), Some("near"));
    assert!(
        s.current().map_or(0, |t| t.failures.len()) <= 4,
        "old failures are pruned"
    );
}

#[test]
fn the_client_sticks_to_its_mp_even_when_a_nearer_one_recovers() {
    let mut s = three();
    for t in 0..5 {
        s.fail("near", t);
    }
    assert_eq!(s.current.as_deref(), Some("neighbour"));
    // Ten minutes later "near" is usable again, but the client stays where it is.
    assert_eq!(
        s.pick(2000).map(|t| t.candidate.name.as_str()),
        Some("neighbour")
    );
    // A refresh that still lists it keeps it too.
    s.replace(
        three()
            .candidates
            .into_iter()
            .map(|t| t.candidate)
            .collect(),
        2000,
    );
    assert_eq!(s.current.as_deref(), Some("neighbour"));
}

#[test]
fn all_failing_wraps_around_and_a_vanished_mp_is_replaced() {
    let mut s = three();
    for name in ["near", "neighbour", "far"] {
        for t in 0..5 {
            s.fail(name, 10 + t);
        }
    }
    // Every one is over the limit: the client still uses one rather than none.
    assert!(s.current.is_some());
    let mut s = three();
    s.replace(vec![mp("other", Locality::SiteDefault)], 0);
    assert_eq!(s.current.as_deref(), Some("other"));
    s.replace(Vec::new(), 0);
    assert_eq!(s.current, None);
}
