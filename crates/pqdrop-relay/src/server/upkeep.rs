//! A fleet instance's background work: keep the connection to the shared
//! directory (reconnecting with backoff), and renew this instance and its
//! rooms before their leases run out.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tracing::info;

use crate::wire::Room;

use super::Shared;

/// First and longest pause between two attempts to reach Redis.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Runs until the relay stops (the task is aborted then).
pub(super) async fn fleet(shared: Arc<Shared>) {
    let Some(fleet) = shared.fleet.clone() else { return };
    let every = fleet.config.lease / 5;
    let mut backoff = BACKOFF_MIN;
    loop {
        if !fleet.is_up() {
            if fleet.reconnect().await {
                backoff = BACKOFF_MIN;
            } else {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        }
        let rooms: Vec<(Room, String)> = shared.state().rooms.iter().filter_map(|(np, w)| w.value.clone().map(|v| (*np, v))).collect();
        match fleet.renew(&rooms).await {
            Ok(lost) if !lost.is_empty() => {
                let sent: HashMap<Room, &str> = rooms.iter().map(|(n, v)| (*n, v.as_str())).collect();
                let mut st = shared.state();
                for np in &lost {
                    // Only the waiter whose lease was renewed: it may have left
                    // (and another taken the room) since.
                    if st.rooms.get(np).and_then(|w| w.value.as_deref()) == sent.get(np).copied() {
                        info!(room = %np, "room lost: the directory gave it to another instance");
                        // Dropping the waiter tells its task (status 24).
                        st.remove_room(*np);
                    }
                }
            }
            Ok(_) => {}
            // The directory is down: reconnect at the top of the loop.
            Err(_) => continue,
        }
        tokio::time::sleep(every).await;
    }
}
