//! Transfers between saved contacts without a code, through the real
//! binary: `pqdrop send --to NAME` and `pqdrop receive --from NAME |
//! --from-contacts`, on the LAN and through a relay. Files and a folder
//! arrive; a transfer cut by `kill -9` resumes; a third identity that knows
//! the receiver's room (it saved the receiver, who did not save it) is
//! refused on both sides and nothing is written. Invitations (`id invite`,
//! `contacts add`) let someone send before they were ever saved; forged and
//! expired ones are refused.

mod common;
use common::users::{path_str, transfer, User, WAIT};
use common::{assert_same_file, exit, partial_files, temp_dir, wait_all, write_pseudo_random_file, Finished, Harness, Net};
use std::time::{Duration, Instant};

/// Alice and Bob with identities who saved each other after a code transfer.
fn contacts(h: &Harness) -> (User, User) {
    let (alice, bob) = (User::new(), User::new());
    alice.ok(h, &["id", "init", "--no-passphrase"]);
    bob.ok(h, &["id", "init", "--no-passphrase"]);
    let [s, r] = transfer(h, &alice, &bob, "31-lemon-tiger", &["--save-contact", "bob"], &["--save-contact", "alice"]);
    s.assert_code(exit::OK);
    r.assert_code(exit::OK);
    (alice, bob)
}

fn send_to(h: &Harness, from: &User, to: &str, paths: &[&std::path::Path], extra: &[&str]) -> common::Proc {
    let mut s = h.send().args(["--to", to]).args(extra);
    for p in paths {
        s = s.arg(p);
    }
    s.env(from.env()[0].0, &from.env()[0].1).env(from.env()[1].0, &from.env()[1].1).without_terminal().spawn("sender")
}

fn receive_from(h: &Harness, me: &User, out: &std::path::Path, from: &[&str]) -> common::Proc {
    h.receive()
        .args(["--yes", "-o", path_str(out)])
        .args(from)
        .env(me.env()[0].0, &me.env()[0].1)
        .env(me.env()[1].0, &me.env()[1].1)
        .without_terminal()
        .spawn("receiver")
}

fn files_and_a_folder(net: Net) {
    let h = Harness::new(net);
    let (alice, bob) = contacts(&h);
    let src = temp_dir("pqdrop-src-");
    let file = src.path().join("note.txt");
    std::fs::write(&file, b"no code needed").unwrap();
    let dir = src.path().join("album");
    std::fs::create_dir_all(dir.join("2026")).unwrap();
    write_pseudo_random_file(&dir.join("2026/a.bin"), 7, 300_000);
    std::fs::write(dir.join("b.txt"), b"second").unwrap();

    // Bob waits for any contact; Alice sends to him by name.
    let out = temp_dir("pqdrop-out-");
    let mut r = receive_from(&h, &bob, out.path(), &["--from-contacts", "--json"]);
    let mut s = send_to(&h, &alice, "bob", &[&file, &dir], &[]);
    let [s, r] = wait_all([&mut s, &mut r], WAIT);
    s.assert_code(exit::OK);
    r.assert_code(exit::OK);
    assert!(s.stderr.contains("sent") && s.stderr.contains("to bob"), "{}", s.stderr);
    assert_eq!(r.json_result()["from"], "alice", "{:?}", r.json_lines());
    assert_eq!(std::fs::read(out.path().join("note.txt")).unwrap(), b"no code needed");
    assert_same_file(&dir.join("2026/a.bin"), &out.path().join("album/2026/a.bin"));
    assert_eq!(std::fs::read(out.path().join("album/b.txt")).unwrap(), b"second");

    // The other way round, waiting for one named contact.
    let out = temp_dir("pqdrop-out-");
    let mut r = receive_from(&h, &alice, out.path(), &["--from", "bob"]);
    let mut s = send_to(&h, &bob, "alice", &[&file], &["--json"]);
    let [s, r] = wait_all([&mut s, &mut r], WAIT);
    s.assert_code(exit::OK);
    r.assert_code(exit::OK);
    assert_eq!(s.json_result()["to"], "alice");
    assert!(r.stderr.contains("from bob"), "{}", r.stderr);
    assert_eq!(std::fs::read(out.path().join("note.txt")).unwrap(), b"no code needed");
}

#[test]
fn lan_contacts_send_files_and_a_folder_without_a_code() {
    files_and_a_folder(Net::Lan);
}

#[test]
fn relay_contacts_send_files_and_a_folder_without_a_code() {
    files_and_a_folder(Net::Relay);
}

/// A contact transfer cut by `kill -9` of the receiver resumes: the second
/// run sends only what is missing.
fn resume_after_kill(net: Net) {
    const SIZE: u64 = 48 << 20;
    let h = Harness::new(net);
    let (alice, bob) = contacts(&h);
    let src = temp_dir("pqdrop-src-");
    let file = src.path().join("big.bin");
    write_pseudo_random_file(&file, 0x5eed, SIZE);
    let out = temp_dir("pqdrop-out-");
    let partial = out.path().join(".big.bin.pqdrop-partial");
    let mut r = receive_from(&h, &bob, out.path(), &["--from", "alice"]);
    let mut s = send_to(&h, &alice, "bob", &[&file], &["--zstd", "off"]);
    let deadline = Instant::now() + WAIT;
    while std::fs::metadata(&partial).map(|m| m.len()).unwrap_or(0) < 8 << 20 {
        for p in [&mut s, &mut r] {
            if let Some(f) = p.poll() {
                panic!("{} exited ({:?}) before the kill; stderr:\n{}", f.label, f.status, f.stderr);
            }
        }
        assert!(Instant::now() < deadline, "the partial file did not reach 8 MiB in time");
        std::thread::sleep(Duration::from_millis(2));
    }
    r.kill();
    s.wait(WAIT).assert_code(exit::PEER_GONE);
    assert_eq!(partial_files(out.path()).len(), 1, "the partial file stays for a resume");

    let mut r = receive_from(&h, &bob, out.path(), &["--from", "alice", "--json"]);
    let mut s = send_to(&h, &alice, "bob", &[&file], &["--zstd", "off", "--json"]);
    let [s, r] = wait_all([&mut s, &mut r], WAIT);
    s.assert_code(exit::OK);
    r.assert_code(exit::OK);
    let resumed = r.json_result()["bytes_resumed"].as_u64().expect("bytes_resumed");
    assert!(resumed >= 8 << 20, "the second run resumed ({resumed} bytes were already there)");
    assert_eq!(s.json_result()["bytes_skipped"].as_u64(), Some(resumed));
    assert_same_file(&file, &out.path().join("big.bin"));
}

#[test]
fn lan_contact_transfer_resumes_after_kill_9() {
    resume_after_kill(Net::Lan);
}

#[test]
fn relay_contact_transfer_resumes_after_kill_9() {
    resume_after_kill(Net::Relay);
}

/// Carol saved Bob (so she can compute his room) but Bob never saved Carol:
/// she is refused on both sides, nothing is written, and Bob's errors name
/// what happened.
fn a_third_identity_is_refused(net: Net) {
    let h = Harness::new(net);
    let (alice, bob) = contacts(&h);
    let carol = User::new();
    carol.ok(&h, &["id", "init", "--no-passphrase"]);
    let [s, r] = transfer(&h, &carol, &bob, "32-lemon-tiger", &["--save-contact", "bob"], &[]);
    s.assert_code(exit::OK);
    r.assert_code(exit::OK);
    let src = temp_dir("pqdrop-src-");
    let file = src.path().join("spam.txt");
    std::fs::write(&file, b"not from a contact").unwrap();
    for waiting in [&["--from-contacts"][..], &["--from", "alice"][..]] {
        let out = temp_dir("pqdrop-out-");
        let mut r = receive_from(&h, &bob, out.path(), waiting);
        let mut s = send_to(&h, &carol, "bob", &[&file], &[]);
        let [s, r]: [Finished; 2] = wait_all([&mut s, &mut r], WAIT);
        s.assert_code(exit::WRONG_CODE);
        r.assert_code(exit::WRONG_CODE);
        assert!(s.stderr.contains("does not accept you"), "{}", s.stderr);
        assert!(r.stderr.contains("not among the contacts"), "{}", r.stderr);
        assert!(std::fs::read_dir(out.path()).unwrap().next().is_none(), "nothing was written");
    }
    drop(alice);
}

#[test]
fn lan_a_third_identity_that_knows_the_room_is_refused() {
    a_third_identity_is_refused(Net::Lan);
}

#[test]
fn relay_a_third_identity_that_knows_the_room_is_refused() {
    a_third_identity_is_refused(Net::Relay);
}

#[test]
fn without_an_identity_or_the_contact_the_commands_say_what_to_do() {
    let h = Harness::new(Net::Lan);
    let src = temp_dir("pqdrop-src-");
    let file = src.path().join("f.txt");
    std::fs::write(&file, b"x").unwrap();
    let f_arg = path_str(&file);
    let nobody = User::new();
    let f = nobody.run(&h, &["send", "--lan-bind", "127.0.0.1", "--to", "bob", f_arg]);
    f.assert_code(exit::USAGE);
    assert!(f.stderr.contains("pqdrop id init"), "{}", f.stderr);
    let me = User::new();
    me.ok(&h, &["id", "init", "--no-passphrase"]);
    let f = me.run(&h, &["send", "--lan-bind", "127.0.0.1", "--to", "bob", f_arg]);
    f.assert_failed();
    assert!(f.stderr.contains("no contact is named \"bob\""), "{}", f.stderr);
    let f = me.run(&h, &["send", "--to", "bob", "--code", "7-lemon-tiger", f_arg]);
    f.assert_code(exit::USAGE);
}

/// Adds `name` to `who`'s contacts from `invitation` on standard input.
fn add_contact(h: &Harness, who: &User, name: &str, invitation: &str) -> Finished {
    h.command("contacts")
        .args(["add", name])
        .env(who.env()[0].0, &who.env()[0].1)
        .stdin_bytes(format!("{invitation}\n").into_bytes())
        .without_terminal()
        .spawn("contacts add")
        .wait(WAIT)
}

/// `who`'s identity, rebuilt from its exported seed (to issue tickets the
/// CLI would not: one that expires in seconds).
fn identity_of(h: &Harness, who: &User) -> pqdrop_proto::identity::Identity {
    let (hex_seed, _) = who.ok(h, &["id", "export", "--format", "hex"]);
    let seed: [u8; 32] = hex::decode(hex_seed.trim()).unwrap().try_into().unwrap();
    pqdrop_proto::identity::Identity::from_seed(pqdrop_proto::keys::Seed::from_bytes(seed)).unwrap()
}

fn invitation_text(inv: &pqdrop_proto::invite::Invitation) -> String {
    format!("pqdrop-invite:{}", data_encoding::BASE64URL_NOPAD.encode(&inv.to_bytes()))
}

/// Dave was never in a transfer with Alice: he adds her from her invitation
/// and sends without a code; she receives from "any contact or anyone
/// invited", saves him, and from then on they are contacts both ways.
/// A forged ticket and an expired one are refused on both sides.
fn invitations(net: Net) {
    use pqdrop_proto::invite::{Invitation, Ticket};
    let h = Harness::new(net);
    let (alice, dave, erin) = (User::new(), User::new(), User::new());
    for u in [&alice, &dave, &erin] {
        u.ok(&h, &["id", "init", "--no-passphrase"]);
    }
    let (text, _) = alice.ok(&h, &["id", "invite", "--valid", "1h"]);
    assert!(text.trim().starts_with("pqdrop-invite:"), "{text}");
    let f = add_contact(&h, &dave, "alice", text.trim());
    f.assert_code(exit::OK);
    assert!(f.stderr.contains(&alice.fingerprint(&h)), "{}", f.stderr);
    let (shown, _) = dave.ok(&h, &["contacts", "show", "alice", "--json"]);
    assert!(shown.contains("invitation"), "{shown}");
    let f = add_contact(&h, &dave, "mangled", &text.trim()[..text.trim().len() - 5]);
    f.assert_failed();
    assert!(f.stderr.contains("invitation"), "{}", f.stderr);

    let src = temp_dir("pqdrop-src-");
    let file = src.path().join("hello.txt");
    std::fs::write(&file, b"invited, no code").unwrap();
    let out = temp_dir("pqdrop-out-");
    let mut r = receive_from(&h, &alice, out.path(), &["--from-contacts", "--save-contact", "dave", "--json"]);
    let mut s = send_to(&h, &dave, "alice", &[&file], &[]);
    let [s, r] = wait_all([&mut s, &mut r], WAIT);
    s.assert_code(exit::OK);
    r.assert_code(exit::OK);
    assert_eq!(r.json_result()["contact_saved"], "dave", "{:?}", r.json_lines());
    assert_eq!(std::fs::read(out.path().join("hello.txt")).unwrap(), b"invited, no code");
    // Now Alice knows Dave: she sends to him, and he waits for her by name.
    let out = temp_dir("pqdrop-out-");
    let mut r = receive_from(&h, &dave, out.path(), &["--from", "alice"]);
    let mut s = send_to(&h, &alice, "dave", &[&file], &[]);
    let [s, r] = wait_all([&mut s, &mut r], WAIT);
    s.assert_code(exit::OK);
    r.assert_code(exit::OK);
    assert!(r.stderr.contains("from alice"), "{}", r.stderr);

    // A ticket with a byte changed (its checksum made right again) is forged;
    // a real ticket that ran out is expired. Neither lets Erin in.
    let real = Invitation::from_bytes(
        &data_encoding::BASE64URL_NOPAD.decode(text.trim().trim_start_matches("pqdrop-invite:").as_bytes()).unwrap(),
    )
    .unwrap();
    let mut t = *real.ticket.as_bytes();
    t[30] ^= 1;
    let forged = Invitation { inviter: real.inviter.clone(), ticket: Ticket::from_bytes(&t).unwrap() };
    let unix = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let alice_id = identity_of(&h, &alice);
    for (forged, why) in [(Some(forged), "not made by your identity"), (None, "expired")] {
        let _ = std::fs::remove_file(erin.dir().join("contacts"));
        let now = unix();
        let inv = forged.unwrap_or_else(|| Invitation::new(&alice_id, now + 2, [3; 16]));
        add_contact(&h, &erin, "alice", &invitation_text(&inv)).assert_code(exit::OK);
        while unix() < now + 3 {
            std::thread::sleep(Duration::from_millis(100));
        }
        let out = temp_dir("pqdrop-out-");
        let mut r = receive_from(&h, &alice, out.path(), &["--from-contacts"]);
        let mut s = send_to(&h, &erin, "alice", &[&file], &[]);
        let [s, r] = wait_all([&mut s, &mut r], WAIT);
        s.assert_code(exit::WRONG_CODE);
        r.assert_code(exit::WRONG_CODE);
        assert!(s.stderr.contains("does not accept you"), "{}", s.stderr);
        assert!(r.stderr.contains(why), "{why}: {}", r.stderr);
        assert!(std::fs::read_dir(out.path()).unwrap().next().is_none(), "nothing was written");
    }
}

#[test]
fn lan_invitations_let_a_stranger_send_once_invited_and_refuse_forged_or_expired_ones() {
    invitations(Net::Lan);
}

#[test]
fn relay_invitations_let_a_stranger_send_once_invited_and_refuse_forged_or_expired_ones() {
    invitations(Net::Relay);
}
