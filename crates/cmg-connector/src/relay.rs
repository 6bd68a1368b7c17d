//! What the connection point relays between the site and the gateway instances: the
//! settings bundle on its way down ([`SettingsFeed`]) and the instances' traffic
//! snapshots on their way up ([`TrafficBook`]). One per connection point, shared by
//! every channel and by the tasks that talk to the site.

use std::sync::Arc;

use crate::settings::SettingsFeed;
use crate::traffic::TrafficBook;

#[derive(Debug, Default)]
pub struct Relay {
    pub settings: Arc<SettingsFeed>,
    pub traffic: TrafficBook,
}
