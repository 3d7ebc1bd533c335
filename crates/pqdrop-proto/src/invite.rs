//! Invitations (PROTOCOL.md §13.8): a way to become someone's contact
//! without a transfer first.
//!
//! R (who invites) gives out its public identity and a **ticket**: an expiry
//! time, a random nonce, and an HMAC of both under R's callback secret (key 4
//! of its seed). Whoever holds the invitation saves R as a contact and, when
//! it first sends to R without a code, puts the ticket inside the sealed part
//! of its contact hello (§13.7). R's pqdrop recomputes the HMAC with its own
//! key 4 and checks the expiry: it knows the invitation was its own and is
//! still valid without having stored anything when it made it. Nothing
//! revokes an invitation but its expiry, so invitations are short-lived.

use crate::identity::{Identity, PublicIdentity, PUBLIC_LEN};
use crate::primitives::{ct_eq, hmac_sha256, sha256};
use crate::{Error, Result};

/// Length of a ticket: `u64_be(expires) || nonce (16) || tag (32)`.
pub const TICKET_LEN: usize = 56;
/// Length of an encoded invitation: version, public identity, ticket, checksum.
pub const INVITATION_LEN: usize = 1 + PUBLIC_LEN + TICKET_LEN + 4;
/// The version byte of an encoded invitation.
pub const INVITATION_VERSION: u8 = 1;
/// The HMAC's label.
const TICKET_LABEL: &[u8] = b"pqdrop/v1 invitation";

/// Proof that the identity which made it invited the bearer, until it expires.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Ticket([u8; TICKET_LEN]);

impl core::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Ticket(expires {})", self.expires())
    }
}

/// Why a ticket was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketError {
    /// The HMAC does not verify: not made by this identity, or changed.
    Forged,
    /// Made by this identity, but its expiry (Unix seconds) has passed.
    Expired(u64),
}

impl Ticket {
    /// The ticket `me` issues for `expires` (Unix seconds) with `nonce`:
    /// `tag = HMAC-SHA256(key 4, "pqdrop/v1 invitation" || u64_be(expires) || nonce)`.
    pub fn issue(me: &Identity, expires: u64, nonce: [u8; 16]) -> Ticket {
        let mut t = [0u8; TICKET_LEN];
        t[..8].copy_from_slice(&expires.to_be_bytes());
        t[8..24].copy_from_slice(&nonce);
        let tag = hmac_sha256(me.keys().callback_secret.as_bytes(), &[TICKET_LABEL, &t[..24]]);
        t[24..].copy_from_slice(&tag);
        Ticket(t)
    }

    /// When it stops being valid, Unix seconds.
    pub fn expires(&self) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.0[..8]);
        u64::from_be_bytes(b)
    }

    /// Checks that `me` issued this ticket and that it is valid at `now`
    /// (Unix seconds, from the caller: this crate reads no clock). The tag is
    /// compared in constant time.
    pub fn verify(&self, me: &Identity, now: u64) -> core::result::Result<(), TicketError> {
        let tag = hmac_sha256(me.keys().callback_secret.as_bytes(), &[TICKET_LABEL, &self.0[..24]]);
        if !ct_eq(&tag, &self.0[24..]) {
            return Err(TicketError::Forged);
        }
        if now >= self.expires() {
            return Err(TicketError::Expired(self.expires()));
        }
        Ok(())
    }

    /// The 56 bytes.
    pub fn as_bytes(&self) -> &[u8; TICKET_LEN] {
        &self.0
    }

    /// A ticket from its 56 bytes (checked only by [`Ticket::verify`]).
    pub fn from_bytes(b: &[u8]) -> Result<Ticket> {
        let t: [u8; TICKET_LEN] =
            b.try_into().map_err(|_| Error::BadKeyLength { what: "invitation ticket", expected: TICKET_LEN, got: b.len() })?;
        Ok(Ticket(t))
    }
}

/// What an invitation carries: who invites, and the ticket to present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    /// The identity that invites.
    pub inviter: PublicIdentity,
    /// Its ticket.
    pub ticket: Ticket,
}

impl Invitation {
    /// `me`'s invitation valid until `expires`.
    pub fn new(me: &Identity, expires: u64, nonce: [u8; 16]) -> Invitation {
        Invitation { inviter: me.public().clone(), ticket: Ticket::issue(me, expires, nonce) }
    }

    /// `01 || public identity (1280) || ticket (56) || SHA-256(all before)[..4]`.
    /// The checksum catches a damaged copy; the ticket's HMAC is checked
    /// only by the inviter.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(INVITATION_LEN);
        out.push(INVITATION_VERSION);
        out.extend_from_slice(&self.inviter.to_bytes());
        out.extend_from_slice(self.ticket.as_bytes());
        let sum = sha256(&[&out]);
        out.extend_from_slice(&sum[..4]);
        out
    }

    /// Reads [`Invitation::to_bytes`]: exact length, version, checksum and a
    /// valid public identity.
    pub fn from_bytes(b: &[u8]) -> Result<Invitation> {
        let bad = |why| Error::Decode { what: "invitation", why };
        if b.len() != INVITATION_LEN {
            return Err(bad("wrong length (copied only in part?)"));
        }
        if b[0] != INVITATION_VERSION {
            return Err(bad("unknown version (made by a newer pqdrop?)"));
        }
        let (body, sum) = b.split_at(INVITATION_LEN - 4);
        if !ct_eq(&sha256(&[body])[..4], sum) {
            return Err(bad("checksum mismatch (damaged in copying)"));
        }
        let inviter = PublicIdentity::from_bytes(&body[1..1 + PUBLIC_LEN])?;
        let ticket = Ticket::from_bytes(&body[1 + PUBLIC_LEN..])?;
        Ok(Invitation { inviter, ticket })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Seed;

    fn id(b: u8) -> Identity {
        Identity::from_seed(Seed::from_bytes([b; 32])).unwrap()
    }

    #[test]
    fn issued_tickets_verify_until_they_expire() {
        let me = id(1);
        let t = Ticket::issue(&me, 1_000, [9; 16]);
        assert_eq!(t.expires(), 1_000);
        assert_eq!(t.verify(&me, 999), Ok(()));
        assert_eq!(t.verify(&me, 1_000), Err(TicketError::Expired(1_000)));
        assert_eq!(t.verify(&id(2), 0), Err(TicketError::Forged), "another identity's key 4");
        for i in 0..TICKET_LEN {
            let mut b = *t.as_bytes();
            b[i] ^= 1;
            // A later expiry written over an old ticket is a forgery too.
            assert_eq!(Ticket::from_bytes(&b).unwrap().verify(&me, 0), Err(TicketError::Forged), "byte {i}");
        }
    }

    #[test]
    fn invitations_round_trip_and_refuse_damage() {
        let me = id(3);
        let inv = Invitation::new(&me, 5_000, [4; 16]);
        let b = inv.to_bytes();
        assert_eq!(b.len(), INVITATION_LEN);
        assert_eq!(Invitation::from_bytes(&b).unwrap(), inv);
        assert!(Invitation::from_bytes(&b[..b.len() - 1]).is_err());
        for i in [0, 1, 700, 1300, INVITATION_LEN - 1] {
            let mut d = b.clone();
            d[i] ^= 0x20;
            assert!(Invitation::from_bytes(&d).is_err(), "byte {i}");
        }
    }
}
