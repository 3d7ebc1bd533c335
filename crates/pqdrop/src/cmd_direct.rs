//! `pqdrop send --to NAME` and `pqdrop receive --from NAME | --from-contacts`:
//! transfers between saved contacts, without a code (PROTOCOL.md §13.7).

use std::sync::Arc;

use anyhow::{bail, Context};
use pqdrop_engine::transport::{Route, Waiting};
use pqdrop_proto::contacts::{Book, Source};
use pqdrop_proto::identity::{Identity, PublicIdentity};
use pqdrop_proto::invite::Ticket;
use serde_json::json;

use crate::common::json_event;
use crate::store::{self, Unlock};

/// Opens this side's identity (asking for its passphrase at a terminal, or
/// from `$PQDROP_PASSPHRASE_FILE`) and its contact book.
pub fn identity_and_book(what: &str) -> anyhow::Result<(Arc<Identity>, Book)> {
    let path = store::identity_path()?;
    if !path.exists() {
        return Err(crate::common::Usage(format!(
            "{what} needs an identity of your own and a saved contact: make one with `pqdrop id init`, then save each other \
             with --save-contact after a transfer with a code, or with an invitation (`pqdrop id invite`)"
        ))
        .into());
    }
    let (me, _) = store::load_identity(&path, &Unlock::from_env())?;
    let dir = path.parent().context("the identity path has no folder")?;
    let book = crate::cmd_contacts::read_book(dir, &me)?;
    Ok((Arc::new(me), book))
}

/// The contact `name` in `book` (its name as saved, its identity, and the
/// ticket of its invitation if it came from one), or an error that says how
/// to find one.
pub fn contact(book: &Book, name: &str) -> anyhow::Result<(String, PublicIdentity, Option<Ticket>)> {
    match book.get(name) {
        Some(c) => {
            let ticket = match &c.source {
                Source::Invitation(t) => *t,
                Source::CodeTransfer => None,
            };
            Ok((c.name.to_string(), c.identity.clone(), ticket))
        }
        None => bail!(
            "no contact is named {name:?}; `pqdrop contacts list` shows them (save one with --save-contact after a transfer with a code, \
             or from their invitation with `pqdrop contacts add`)"
        ),
    }
}

/// What the sender prints once it waits for its contact.
pub fn sender_waiting(name: &str, w: Waiting, route: &Route, json: bool) {
    if json {
        json_event(json!({"event": "waiting", "for": name}));
        return;
    }
    let how = match route {
        Route::Relay(r) => format!("pqdrop receive --relay {r} --from-contacts"),
        Route::Lan(_) => "pqdrop receive --from-contacts".to_owned(),
    };
    match w {
        Waiting::LanSearching => say!("Looking for {name} on the local network (they run `{how}`)..."),
        _ => say!("Waiting for {name} to receive (they run `{how}`, or --from with your name)..."),
    }
}

/// What the receiver prints once it waits in its room.
pub fn receiver_waiting(from: Option<&str>, w: Waiting, route: &Route, json: bool) {
    let who = from.map(str::to_owned).unwrap_or_else(|| "any of your contacts (or anyone with your invitation)".to_owned());
    if json {
        json_event(json!({"event": "waiting", "for": who}));
        return;
    }
    match (w, route) {
        (Waiting::LanListening(addr), _) => say!("Waiting for {who} on the local network (listening on {addr})..."),
        (_, Route::Relay(r)) => say!("Waiting for {who} (via the relay {r}); they run `pqdrop send --to <your name> PATH…`..."),
        _ => say!("Waiting for {who}..."),
    }
}

/// The name `peer` has in `book`, or its fingerprint.
pub fn name_of(book: &Book, peer: &PublicIdentity) -> String {
    book.find(peer).map(|c| c.name.to_string()).unwrap_or_else(|| peer.fingerprint().to_string())
}
