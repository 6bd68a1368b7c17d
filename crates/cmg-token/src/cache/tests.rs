use super::*;

fn at(s: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(s)
}

#[test]
fn entries_live_until_expiry_or_max_age() {
    let cache = TokenCache::new(10, Duration::from_secs(60));
    cache.insert("t1", 1, at(1030), at(1000)); // token expires first
    cache.insert("t2", 2, at(9999), at(1000)); // max_age first
    assert_eq!(cache.get("t1", at(1029)), Some(1));
    assert_eq!(cache.get("t1", at(1030)), None);
    assert_eq!(cache.get("t2", at(1059)), Some(2));
    assert_eq!(cache.get("t2", at(1060)), None);
    assert_eq!(cache.get("other", at(1000)), None);
    assert!(cache.is_empty(), "stale entries are dropped on lookup");
    cache.insert("t3", 3, at(999), at(1000));
    assert!(cache.is_empty(), "an expired token is not cached");
}

#[test]
fn bounded_and_clearable() {
    let cache = TokenCache::new(3, Duration::from_secs(60));
    for i in 0..3 {
        cache.insert(&format!("old{i}"), i, at(1010), at(1000));
    }
    // Expired entries are swept first.
    cache.insert("new", 9, at(2000), at(1020));
    assert_eq!(cache.len(), 1);
    for i in 0..10 {
        cache.insert(&format!("t{i}"), i, at(2000), at(1020));
    }
    assert_eq!(cache.len(), 3);
    cache.clear();
    assert!(cache.is_empty());
}

#[test]
fn the_token_is_not_kept() {
    let cache = TokenCache::new(3, Duration::from_secs(60));
    cache.insert("secret-bearer-token", (), at(2000), at(1000));
    assert!(!format!("{cache:?}").contains("secret-bearer-token"));
}
