//! The site API's request bodies (`cmg_site::model`), as JSON from an administrator's
//! client. The first byte picks the type; a body that parses must serialise again.
#![no_main]

use cmg_site::model::*;
use libfuzzer_sys::fuzz_target;

fn roundtrip<T: serde::de::DeserializeOwned + serde::Serialize>(body: &[u8]) {
    if let Ok(value) = serde_json::from_slice::<T>(body) {
        serde_json::to_vec(&value).expect("a parsed body serialises");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind, body)) = data.split_first() else {
        return;
    };
    match kind % 14 {
        0 => roundtrip::<GatewayCreate>(body),
        1 => roundtrip::<GatewayModify>(body),
        2 => roundtrip::<GatewayRedeploy>(body),
        3 => roundtrip::<ExportRequest>(body),
        4 => roundtrip::<RoleCreate>(body),
        5 => roundtrip::<RoleModify>(body),
        6 => roundtrip::<ConnectionPointAdd>(body),
        7 => roundtrip::<BoundaryGroupSet>(body),
        8 => roundtrip::<ClientSettings>(body),
        9 => roundtrip::<TokenNew>(body),
        10 => roundtrip::<StsTokenRequest>(body),
        11 => roundtrip::<KeyRoll>(body),
        12 => roundtrip::<AlertWebhook>(body),
        _ => roundtrip::<StorageSet>(body),
    }
});
