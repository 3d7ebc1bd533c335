//! The contact book: the public identities a user saved, under names they
//! chose, sealed at rest under a key derived from the identity's state IKM
//! (index 3, PROTOCOL.md §13.4), and the safety number two people compare.
//!
//! This is only the format and its rules: the caller reads and writes the
//! file, draws the nonce, and holds the lock.

use core::fmt;

use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use crate::codec::{put_bytes, put_varuint, Reader};
use crate::identity::{PublicIdentity, PUBLIC_LEN};
use crate::primitives::{hkdf_sha256, sha512, AeadAlg, AeadKey};
use crate::{Error, Result};

/// The first 8 bytes of a contact book.
pub const BOOK_MAGIC: &[u8; 8] = b"PQDROPCB";
/// The format version this build writes and reads.
pub const BOOK_VERSION: u8 = 1;
const HEADER_LEN: usize = 24;
/// Most contacts in one book.
pub const MAX_CONTACTS: usize = 10_000;
/// Longest contact name, in bytes of UTF-8.
pub const MAX_NAME: usize = 64;
/// Largest contact book a reader accepts (a full book is about 13 MB).
pub const MAX_BOOK_LEN: usize = 16 << 20;
/// HKDF `info` of the book key.
const BOOK_INFO: &[u8] = b"pqdrop contact book v1";

/// A contact's name: 1 to 64 bytes of UTF-8, made of letters, digits,
/// spaces and `-_.@'`, not starting with `-` or a space and not ending with a
/// space. Names are unique in a book regardless of case, so "Alice" and
/// "alice" cannot be two people.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ContactName(String);

impl ContactName {
    /// Checks `name` against the rules above.
    pub fn new(name: &str) -> core::result::Result<Self, NameError> {
        if name.is_empty() {
            return Err(NameError::Empty);
        }
        if name.len() > MAX_NAME {
            return Err(NameError::TooLong);
        }
        if name.starts_with(['-', ' ']) || name.ends_with(' ') {
            return Err(NameError::Edges);
        }
        if let Some(c) = name.chars().find(|c| !(c.is_alphanumeric() || " -_.@'".contains(*c))) {
            return Err(NameError::Char(c));
        }
        Ok(ContactName(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The same name regardless of case.
    pub fn same(&self, other: &ContactName) -> bool {
        self.0.to_lowercase() == other.0.to_lowercase()
    }
}

impl fmt::Display for ContactName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl fmt::Debug for ContactName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContactName({:?})", self.0)
    }
}

/// Why a name is not a contact name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameError {
    /// It is empty.
    Empty,
    /// It is over [`MAX_NAME`] bytes.
    TooLong,
    /// It starts with `-` or a space, or ends with a space.
    Edges,
    /// It holds this character.
    Char(char),
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameError::Empty => f.write_str("a contact name cannot be empty"),
            NameError::TooLong => write!(f, "a contact name is at most {MAX_NAME} bytes"),
            NameError::Edges => f.write_str("a contact name cannot start with '-' or a space, or end with a space"),
            NameError::Char(c) => write!(f, "a contact name is letters, digits, spaces and -_.@' (not {:?})", c),
        }
    }
}

/// How a contact came into the book.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Their identity came inside a code-authenticated transfer.
    CodeTransfer,
    /// They were added from an invitation they made; the ticket to present
    /// when sending to them (PROTOCOL.md §13.8) until they have saved us.
    Invitation(Option<crate::invite::Ticket>),
}

impl Source {
    fn code(&self) -> u64 {
        match self {
            Source::CodeTransfer => 1,
            Source::Invitation(_) => 2,
        }
    }
}

/// One saved contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// The name the user gave.
    pub name: ContactName,
    /// Their public identity.
    pub identity: PublicIdentity,
    /// When they were saved, Unix seconds.
    pub added: u64,
    /// How.
    pub source: Source,
}

/// What [`Book::add`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Added {
    /// A new contact.
    New,
    /// This identity is saved already, under this name (nothing changed).
    AlreadySaved(ContactName),
}

/// Why [`Book::add`] or [`Book::rename`] refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BookError {
    /// The name belongs to a contact with a different identity: their keys
    /// changed, or it is someone else. Never replaced silently.
    KeysChanged(ContactName),
    /// The name is taken (by another contact, when renaming).
    NameTaken(ContactName),
    /// No contact has this name.
    NotFound(String),
    /// The book holds [`MAX_CONTACTS`] already.
    Full,
}

impl fmt::Display for BookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BookError::KeysChanged(n) => write!(f, "the contact {n} is saved with a different identity"),
            BookError::NameTaken(n) => write!(f, "the name {n} is taken by another contact"),
            BookError::NotFound(n) => write!(f, "no contact is named {n:?}"),
            BookError::Full => write!(f, "the contact book is full ({MAX_CONTACTS} contacts)"),
        }
    }
}

/// A contact book in memory, in the order contacts were added.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Book {
    contacts: Vec<Contact>,
}

impl Book {
    /// All contacts.
    pub fn contacts(&self) -> &[Contact] {
        &self.contacts
    }

    /// The contact named `name` (regardless of case).
    pub fn get(&self, name: &str) -> Option<&Contact> {
        let n = name.to_lowercase();
        self.contacts.iter().find(|c| c.name.as_str().to_lowercase() == n)
    }

    /// The contact with this identity.
    pub fn find(&self, identity: &PublicIdentity) -> Option<&Contact> {
        self.contacts.iter().find(|c| c.identity == *identity)
    }

    /// Saves `contact`, unless its identity is saved already (then nothing
    /// changes) or its name belongs to a different identity (refused).
    pub fn add(&mut self, contact: Contact) -> core::result::Result<Added, BookError> {
        if let Some(c) = self.find(&contact.identity) {
            return Ok(Added::AlreadySaved(c.name.clone()));
        }
        if let Some(c) = self.contacts.iter().find(|c| c.name.same(&contact.name)) {
            return Err(BookError::KeysChanged(c.name.clone()));
        }
        if self.contacts.len() >= MAX_CONTACTS {
            return Err(BookError::Full);
        }
        self.contacts.push(contact);
        Ok(Added::New)
    }

    /// Renames the contact `from` to `to`.
    pub fn rename(&mut self, from: &str, to: ContactName) -> core::result::Result<(), BookError> {
        let i = self.index(from)?;
        if let Some(other) = self.contacts.iter().enumerate().find(|(j, c)| *j != i && c.name.same(&to)) {
            return Err(BookError::NameTaken(other.1.name.clone()));
        }
        self.contacts[i].name = to;
        Ok(())
    }

    /// Removes the contact `name` and returns it.
    pub fn remove(&mut self, name: &str) -> core::result::Result<Contact, BookError> {
        let i = self.index(name)?;
        Ok(self.contacts.remove(i))
    }

    fn index(&self, name: &str) -> core::result::Result<usize, BookError> {
        let n = name.to_lowercase();
        self.contacts.iter().position(|c| c.name.as_str().to_lowercase() == n).ok_or_else(|| BookError::NotFound(name.to_owned()))
    }

    fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(8 + self.contacts.len() * (PUBLIC_LEN + 80)));
        put_varuint(&mut out, self.contacts.len() as u64);
        for c in &self.contacts {
            put_bytes(&mut out, c.name.as_str().as_bytes());
            put_bytes(&mut out, &c.identity.to_bytes());
            put_varuint(&mut out, c.added);
            put_varuint(&mut out, c.source.code());
            if let Source::Invitation(t) = &c.source {
                put_bytes(&mut out, t.as_ref().map(|t| &t.as_bytes()[..]).unwrap_or(&[]));
            }
        }
        out
    }

    fn decode(plain: &[u8]) -> Result<Self> {
        let bad = |why| Error::Decode { what: "contact book", why };
        let mut r = Reader::new(plain);
        let n = r.varuint("contact count")?;
        if n > MAX_CONTACTS as u64 {
            return Err(Error::TooMany { what: "contacts", count: n, cap: MAX_CONTACTS as u64 });
        }
        let mut book = Book { contacts: Vec::with_capacity(n as usize) };
        for _ in 0..n {
            let name = core::str::from_utf8(r.bytes("contact name", MAX_NAME)?).map_err(|_| bad("a name is not UTF-8"))?;
            let name = ContactName::new(name).map_err(|_| bad("a name breaks the naming rules"))?;
            let identity = PublicIdentity::from_bytes(r.bytes("contact identity", PUBLIC_LEN)?)?;
            let added = r.varuint("contact added")?;
            let source = match r.varuint("contact source")? {
                1 => Source::CodeTransfer,
                2 => match r.bytes("contact ticket", crate::invite::TICKET_LEN)? {
                    [] => Source::Invitation(None),
                    t if t.len() == crate::invite::TICKET_LEN => Source::Invitation(Some(crate::invite::Ticket::from_bytes(t)?)),
                    _ => return Err(bad("a ticket is not 56 bytes")),
                },
                _ => return Err(bad("unknown contact source")),
            };
            let contact = Contact { name, identity, added, source };
            if book.add(contact) != Ok(Added::New) {
                return Err(bad("a name or an identity appears twice"));
            }
        }
        r.finish("contact book")?;
        Ok(book)
    }
}

/// The key that seals a contact book:
/// `HKDF-SHA256(salt = "", ikm = state_ikm, info = "pqdrop contact book v1", L = 32)`.
fn book_key(state_ikm: &[u8; 32]) -> Result<AeadKey> {
    let mut k = Zeroizing::new([0u8; 32]);
    hkdf_sha256(&[], state_ikm, &[BOOK_INFO], &mut k[..])?;
    AeadKey::new(AeadAlg::ChaCha20Poly1305, &k[..])
}

/// Seals `book` under the state IKM (key 3 of the identity) with a fresh
/// nonce from `rng`.
pub fn seal_book(book: &Book, state_ikm: &[u8; 32], rng: &mut (impl RngCore + CryptoRng)) -> Result<Vec<u8>> {
    let mut nonce = [0u8; 12];
    rng.try_fill_bytes(&mut nonce).map_err(|_| Error::Crypto)?;
    seal_book_with(book, state_ikm, nonce)
}

/// [`seal_book`] with a chosen nonce (for the published vectors). A nonce
/// must never be used twice with the same identity.
pub fn seal_book_with(book: &Book, state_ikm: &[u8; 32], nonce: [u8; 12]) -> Result<Vec<u8>> {
    let mut body = book.encode();
    let mut out = Vec::with_capacity(HEADER_LEN + body.len() + 16);
    out.extend_from_slice(BOOK_MAGIC);
    out.extend_from_slice(&[BOOK_VERSION, 0, 0, 0]);
    out.extend_from_slice(&nonce);
    let tag = book_key(state_ikm)?.seal_in_place(nonce, &out[..HEADER_LEN], &mut body[..])?;
    out.extend_from_slice(&body);
    out.extend_from_slice(&tag);
    Ok(out)
}

/// Seals raw `plaintext` as a book body, so tests and fuzzing reach the
/// decoder behind the tag.
#[cfg(feature = "testing")]
pub fn seal_plaintext(plaintext: &[u8], state_ikm: &[u8; 32], nonce: [u8; 12]) -> Result<Vec<u8>> {
    let mut body = plaintext.to_vec();
    let mut out = Vec::with_capacity(HEADER_LEN + body.len() + 16);
    out.extend_from_slice(BOOK_MAGIC);
    out.extend_from_slice(&[BOOK_VERSION, 0, 0, 0]);
    out.extend_from_slice(&nonce);
    let tag = book_key(state_ikm)?.seal_in_place(nonce, &out[..HEADER_LEN], &mut body[..])?;
    out.extend_from_slice(&body);
    out.extend_from_slice(&tag);
    Ok(out)
}

/// Opens a contact book sealed under `state_ikm`. A book of another
/// identity, a changed byte and a cut file are all refused.
pub fn open_book(file: &[u8], state_ikm: &[u8; 32]) -> Result<Book> {
    let bad = |why| Error::Decode { what: "contact book", why };
    if file.len() > MAX_BOOK_LEN {
        return Err(Error::TooLarge { what: "contact book", len: file.len() as u64, cap: MAX_BOOK_LEN as u64 });
    }
    if file.len() < HEADER_LEN + 16 || &file[..8] != BOOK_MAGIC {
        return Err(bad("not a pqdrop contact book, or cut short"));
    }
    if file[8] != BOOK_VERSION || file[9..12] != [0, 0, 0] {
        return Err(bad("written by a newer pqdrop, or its header was changed"));
    }
    let mut nonce = [0u8; 12];
    nonce.copy_from_slice(&file[12..HEADER_LEN]);
    let mut body = Zeroizing::new(file[HEADER_LEN..].to_vec());
    let n = book_key(state_ikm)?
        .open_in_place(nonce, &file[..HEADER_LEN], &mut body[..])
        .map_err(|_| bad("it does not match its check: it was changed, cut, or belongs to another identity"))?;
    Book::decode(&body[..n])
}

/// A number two people compare to know that each holds the other's real
/// identity: 60 digits in 12 groups of 5, the same on both sides:
/// `SHA-512("pqdrop safety number v1" || lo || hi)`, where `lo` and `hi` are
/// the two encoded public identities in bytewise order; group `i` is the
/// big-endian integer of digest bytes `5i..5i+5` modulo 100000.
pub fn safety_number(a: &PublicIdentity, b: &PublicIdentity) -> String {
    let (a, b) = (a.to_bytes(), b.to_bytes());
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let d = sha512(&[b"pqdrop safety number v1", &lo, &hi]);
    let groups: Vec<String> = (0..12)
        .map(|i| {
            let v = d[5 * i..5 * i + 5].iter().fold(0u64, |acc, x| (acc << 8) | u64::from(*x));
            format!("{:05}", v % 100_000)
        })
        .collect();
    groups.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;
    use crate::keys::Seed;

    fn id(b: u8) -> Identity {
        Identity::from_seed(Seed::from_bytes([b; 32])).unwrap()
    }

    fn contact(name: &str, b: u8) -> Contact {
        Contact {
            name: ContactName::new(name).unwrap(),
            identity: id(b).public().clone(),
            added: 1_700_000_000,
            source: Source::CodeTransfer,
        }
    }

    #[test]
    fn names_follow_the_rules() {
        for ok in ["alice", "Bob Smith", "ünïcode", "o'neil", "a.b@c", "x"] {
            assert!(ContactName::new(ok).is_ok(), "{ok}");
        }
        assert_eq!(ContactName::new(""), Err(NameError::Empty));
        assert_eq!(ContactName::new(&"a".repeat(65)), Err(NameError::TooLong));
        for edge in ["-rf", " a", "a "] {
            assert_eq!(ContactName::new(edge), Err(NameError::Edges), "{edge}");
        }
        for bad in ["a/b", "a\nb", "a\u{202e}b", "a;b", "tab\t"] {
            assert!(matches!(ContactName::new(bad), Err(NameError::Char(_))), "{bad:?}");
        }
    }

    #[test]
    fn a_book_round_trips_and_refuses_tampering_and_other_identities() {
        let me = id(9);
        let mut book = Book::default();
        assert_eq!(book.add(contact("alice", 1)), Ok(Added::New));
        assert_eq!(book.add(contact("Bob", 2)), Ok(Added::New));
        let ikm = me.keys().state_ikm.as_bytes();
        let sealed = seal_book_with(&book, ikm, [7; 12]).unwrap();
        assert_eq!(open_book(&sealed, ikm).unwrap(), book);
        for i in [0, 8, 12, 30, sealed.len() - 1] {
            let mut t = sealed.clone();
            t[i] ^= 1;
            assert!(open_book(&t, ikm).is_err(), "byte {i}");
        }
        assert!(open_book(&sealed[..sealed.len() - 1], ikm).is_err());
        assert!(open_book(&sealed, id(8).keys().state_ikm.as_bytes()).is_err());
        assert_eq!(open_book(&seal_book_with(&Book::default(), ikm, [0; 12]).unwrap(), ikm).unwrap(), Book::default());
    }

    #[test]
    fn changed_keys_and_duplicates_are_never_saved() {
        let mut book = Book::default();
        book.add(contact("alice", 1)).unwrap();
        assert_eq!(book.add(contact("ALICE", 2)), Err(BookError::KeysChanged(ContactName::new("alice").unwrap())));
        assert_eq!(book.add(contact("other", 1)), Ok(Added::AlreadySaved(ContactName::new("alice").unwrap())));
        book.add(contact("bob", 2)).unwrap();
        assert!(matches!(book.rename("bob", ContactName::new("Alice").unwrap()), Err(BookError::NameTaken(_))));
        book.rename("BOB", ContactName::new("Robert").unwrap()).unwrap();
        assert_eq!(book.get("robert").unwrap().identity, *id(2).public());
        assert!(matches!(book.remove("nobody"), Err(BookError::NotFound(_))));
        assert_eq!(book.remove("alice").unwrap().identity, *id(1).public());
        assert_eq!(book.contacts().len(), 1);
    }

    #[test]
    fn safety_numbers_are_symmetric_and_differ() {
        let (a, b, c) = (id(1), id(2), id(3));
        let ab = safety_number(a.public(), b.public());
        assert_eq!(ab, safety_number(b.public(), a.public()));
        assert_ne!(ab, safety_number(a.public(), c.public()));
        assert_eq!(ab.len(), 12 * 5 + 11);
        assert!(ab.split(' ').all(|g| g.len() == 5 && g.bytes().all(|d| d.is_ascii_digit())));
    }
}
