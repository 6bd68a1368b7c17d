//! Client location input (`cmg_proto::location`): boundary groups with their
//! boundaries (subnets, ranges, prefixes) as the site API and the site's store hand
//! them over in JSON. A group that parses must serialise and parse back equal.
#![no_main]

use cmg_proto::location::BoundaryGroup;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(groups) = serde_json::from_slice::<Vec<BoundaryGroup>>(data) {
        let text = serde_json::to_vec(&groups).expect("serialises");
        let back: Vec<BoundaryGroup> = serde_json::from_slice(&text).expect("parses back");
        assert_eq!(back, groups);
    }
});
