//! What the connection point relays between the site and the gateway instances: the
//! settings bundle on its way down ([`SettingsFeed`]) and the instances' traffic
//! snapshots on their way up ([`TrafficBook`]). One per connection point, shared by
//! every channel, by the tasks that talk to the site and by the admin listener.

use std::sync::Arc;

use crate::metrics::Metrics;
use crate::settings::SettingsFeed;
use crate::traffic::TrafficBook;

#[derive(Debug)]
pub struct Relay {
    pub(crate) settings: Arc<SettingsFeed>,
    pub(crate) traffic: TrafficBook,
    /// Counts of both directions, for the admin listener.
    pub(crate) metrics: Metrics,
}

impl Relay {
    pub(crate) fn new(connection_point: &str) -> Self {
        Self {
            settings: Arc::default(),
            traffic: TrafficBook::default(),
            metrics: Metrics::new(connection_point),
        }
    }
}
