//! Contacts through the real binary: two users with separate config folders
//! make identities, transfer with a code and save each other
//! (`--save-contact`), on the LAN and through a relay; then `pqdrop
//! contacts` lists, shows, renames and removes, a changed identity under a
//! saved name is refused, and the book is sealed (a tampered one is
//! refused, never overwritten).

mod common;
use common::users::{path_str, transfer, User, WAIT};
use common::{exit, temp_dir, Harness, Net};

fn save_each_other(net: Net) {
    let h = Harness::new(net);
    let (alice, bob) = (User::new(), User::new());
    alice.ok(&h, &["id", "init", "--no-passphrase"]);
    bob.ok(&h, &["id", "init", "--no-passphrase"]);
    let (fa, fb) = (alice.fingerprint(&h), bob.fingerprint(&h));

    let [s, r] = transfer(&h, &alice, &bob, "21-lemon-tiger", &["--save-contact", "bob"], &["--save-contact", "alice", "--json"]);
    s.assert_code(exit::OK);
    r.assert_code(exit::OK);
    let serr = s.stderr.clone();
    assert!(serr.contains(&format!("Saved the receiver as the contact bob ({fb})")), "{serr}");
    // The receiver's offer event names the sender's identity, not yet a contact.
    let offer = r.json_lines().into_iter().find(|l| l["event"] == "offer").expect("an offer event");
    assert_eq!(offer["peer"]["fingerprint"], fa.as_str(), "{offer}");
    assert!(offer["peer"]["contact"].is_null(), "{offer}");

    // Both books hold the other, with the same safety number on each side.
    let (list, _) = alice.ok(&h, &["contacts", "list", "--json"]);
    let a_view: serde_json::Value = serde_json::from_str(list.trim()).expect("one contact");
    assert_eq!((a_view["name"].as_str(), a_view["fingerprint"].as_str()), (Some("bob"), Some(fb.as_str())));
    let (show, _) = bob.ok(&h, &["contacts", "show", "ALICE", "--json"]);
    let b_view: serde_json::Value = serde_json::from_str(&show).expect("show --json");
    assert_eq!(b_view["fingerprint"], fa.as_str());
    assert_eq!(b_view["safety_number"], a_view["safety_number"], "the same safety number on both sides");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(alice.dir().join("contacts")).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);

    // A second transfer: the receiver now sees a saved contact in the offer.
    let [s, r] = transfer(&h, &alice, &bob, "22-lemon-tiger", &[], &["--json"]);
    s.assert_code(exit::OK);
    r.assert_code(exit::OK);
    let offer = r.json_lines().into_iter().find(|l| l["event"] == "offer").expect("an offer event");
    assert_eq!(offer["peer"]["contact"], "alice", "{offer}");
    let sres = s.stderr.clone();
    assert!(sres.contains("The receiver is your contact bob"), "{sres}");
}

#[test]
fn lan_users_save_each_other() {
    save_each_other(Net::Lan);
}

#[test]
fn relay_users_save_each_other() {
    save_each_other(Net::Relay);
}

#[test]
fn a_new_identity_under_a_saved_name_is_refused_and_nothing_changes() {
    let h = Harness::new(Net::Lan);
    let (alice, bob, mallory) = (User::new(), User::new(), User::new());
    for u in [&alice, &bob, &mallory] {
        u.ok(&h, &["id", "init", "--no-passphrase"]);
    }
    let [s, r] = transfer(&h, &bob, &alice, "23-lemon-tiger", &[], &["--save-contact", "bob"]);
    s.assert_code(exit::OK);
    r.assert_code(exit::OK);
    let book = std::fs::read(alice.dir().join("contacts")).unwrap();

    // Someone else, with their own identity, claims to be bob.
    let [s, r] = transfer(&h, &mallory, &alice, "24-lemon-tiger", &[], &["--save-contact", "bob"]);
    s.assert_code(exit::OK);
    assert_ne!(r.code(), Some(exit::OK), "a changed identity must not be saved quietly");
    let err = r.stderr.clone();
    assert!(err.contains("WARNING: the contact bob is saved with a different identity"), "{err}");
    assert!(err.contains(&mallory.fingerprint(&h)) && err.contains(&bob.fingerprint(&h)), "{err}");
    assert!(err.contains("the transfer itself completed"), "{err}");
    assert_eq!(std::fs::read(alice.dir().join("contacts")).unwrap(), book, "the book is unchanged");

    // The same identity under a second name: kept under the first.
    let [_, r] = transfer(&h, &bob, &alice, "25-lemon-tiger", &[], &["--save-contact", "robert"]);
    r.assert_code(exit::OK);
    assert!(r.stderr.clone().contains("already saved as bob"), "{}", r.stderr.clone());

    // Rename, then remove.
    alice.ok(&h, &["contacts", "rename", "bob", "Bob Smith"]);
    let (list, _) = alice.ok(&h, &["contacts", "list"]);
    assert!(list.starts_with("Bob Smith "), "{list}");
    alice.ok(&h, &["contacts", "remove", "bob smith"]);
    let (list, _) = alice.ok(&h, &["contacts", "list", "--json"]);
    assert_eq!(list, "");
    let f = alice.run(&h, &["contacts", "show", "bob"]);
    assert_ne!(f.code(), Some(exit::OK));
    assert!(f.stderr.clone().contains("no contact is named \"bob\""), "{}", f.stderr.clone());
}

#[test]
fn without_an_identity_on_the_other_side_nothing_is_saved_and_the_reason_is_given() {
    let h = Harness::new(Net::Lan);
    let (alice, bob) = (User::new(), User::new());
    bob.ok(&h, &["id", "init", "--no-passphrase"]);
    // Alice has no identity; then she withholds one she has.
    for (code, extra) in [("26-lemon-tiger", &[][..]), ("27-lemon-tiger", &["--no-identity"][..])] {
        if code == "27-lemon-tiger" {
            alice.ok(&h, &["id", "init", "--no-passphrase"]);
        }
        let [s, r] = transfer(&h, &alice, &bob, code, extra, &["--save-contact", "alice"]);
        s.assert_code(exit::OK);
        assert_ne!(r.code(), Some(exit::OK));
        assert!(r.stderr.clone().contains("the sender did not show an identity"), "{}", r.stderr.clone());
        assert!(!bob.dir().join("contacts").exists());
    }
    // A name that breaks the rules fails before anyone waits.
    let f = bob.run(&h, &["receive", "--save-contact", "-rf", "28-lemon-tiger"]);
    f.assert_code(2);
}

#[test]
fn a_tampered_contact_book_is_refused_and_left_alone() {
    let h = Harness::new(Net::Lan);
    let (alice, bob) = (User::new(), User::new());
    alice.ok(&h, &["id", "init", "--no-passphrase"]);
    bob.ok(&h, &["id", "init", "--no-passphrase"]);
    let [_, r] = transfer(&h, &alice, &bob, "29-lemon-tiger", &[], &["--save-contact", "alice"]);
    r.assert_code(exit::OK);
    let path = bob.dir().join("contacts");
    let mut book = std::fs::read(&path).unwrap();
    let last = book.len() - 1;
    book[last] ^= 1;
    std::fs::write(&path, &book).unwrap();
    let f = bob.run(&h, &["contacts", "list"]);
    assert_ne!(f.code(), Some(exit::OK));
    assert!(f.stderr.clone().contains("cannot be read"), "{}", f.stderr.clone());
    // Saving someone else does not replace the damaged book either.
    let carol = User::new();
    carol.ok(&h, &["id", "init", "--no-passphrase"]);
    let [_, r] = transfer(&h, &carol, &bob, "30-lemon-tiger", &[], &["--save-contact", "carol"]);
    assert_ne!(r.code(), Some(exit::OK));
    assert_eq!(std::fs::read(&path).unwrap(), book);
}

#[test]
fn a_passphrase_protected_identity_is_shown_only_when_unlocked() {
    let h = Harness::new(Net::Lan);
    let (mut alice, bob) = (User::new(), User::new());
    let pass = temp_dir("pqdrop-pass-");
    let pf = pass.path().join("pass");
    std::fs::write(&pf, "a long passphrase\n").unwrap();
    alice.ok(&h, &["id", "init", "--passphrase-file", path_str(&pf)]);
    bob.ok(&h, &["id", "init", "--no-passphrase"]);
    // Proving her identity needs her key: with no passphrase at hand it is
    // not shown, and she is told; Bob cannot save her.
    let [s, r] = transfer(&h, &alice, &bob, "31-lemon-tiger", &[], &["--save-contact", "alice"]);
    s.assert_code(exit::OK);
    assert!(s.stderr.contains("Your identity has a passphrase, so it is not shown"), "{}", s.stderr);
    assert_ne!(r.code(), Some(exit::OK));
    assert!(r.stderr.contains("the sender did not show an identity"), "{}", r.stderr);
    // --save-contact without a way to give the passphrase fails before anyone waits.
    let f = alice.run(&h, &["send", "--lan-bind", "127.0.0.1", "--save-contact", "bob", "--code", "32-lemon-tiger", path_str(&pf)]);
    assert_ne!(f.code(), Some(exit::OK));
    assert!(f.stderr.contains("PQDROP_PASSPHRASE_FILE") && !f.stderr.contains("Code:"), "{}", f.stderr);
    // With $PQDROP_PASSPHRASE_FILE (a path; never the passphrase in argv) both save.
    alice.passphrase_file = Some(pf.clone());
    let [s, r] = transfer(&h, &alice, &bob, "33-lemon-tiger", &["--save-contact", "bob"], &["--save-contact", "alice"]);
    s.assert_code(exit::OK);
    r.assert_code(exit::OK);
    let mut p = h
        .command("contacts")
        .args(["list", "--json"])
        .env("XDG_CONFIG_HOME", alice.config.path())
        .env("PQDROP_PASSPHRASE_FILE", &pf)
        .without_terminal()
        .spawn("contacts");
    let f = p.wait(WAIT);
    f.assert_code(exit::OK);
    assert!(f.stdout_text().contains("\"name\":\"bob\""), "{}", f.stdout_text());
}

/// `pqdrop id link` on the old device and `pqdrop id join` on the new one.
fn link(h: &Harness, old: &User, new: &User, code: &str, join_extra: &[&str]) -> [common::Finished; 2] {
    let mut o = h
        .command("id")
        .args(["link", "--yes", "--code", code])
        .args(h_route(h))
        .env("XDG_CONFIG_HOME", old.config.path())
        .without_terminal()
        .spawn("old device");
    let mut n = h
        .command("id")
        .args(["join", "--no-passphrase"])
        .args(join_extra)
        .args(h_route(h))
        .arg(code)
        .env("XDG_CONFIG_HOME", new.config.path())
        .without_terminal()
        .spawn("new device");
    common::wait_all([&mut o, &mut n], WAIT)
}

fn h_route(h: &Harness) -> Vec<String> {
    match h.relay_addr() {
        Some(a) => vec!["--relay".into(), a.to_string()],
        None => vec!["--lan-bind".into(), "127.0.0.1".into()],
    }
}

fn link_gives_the_same_identity(net: Net) {
    let h = Harness::new(net);
    let (laptop, phone) = (User::new(), User::new());
    laptop.ok(&h, &["id", "init", "--no-passphrase"]);
    let [o, n] = link(&h, &laptop, &phone, "51-lemon-tiger", &[]);
    o.assert_code(exit::OK);
    n.assert_code(exit::OK);
    let fp = laptop.fingerprint(&h);
    assert_eq!(phone.fingerprint(&h), fp);
    assert!(o.stderr.contains(&format!("It must then show {fp}")), "{}", o.stderr);
    assert!(n.stderr.contains(&format!("Joined the identity {fp}")), "{}", n.stderr);
    assert!(n.stderr.contains("Check: "), "{}", n.stderr);
    // The same seed: export agrees, and the file is private.
    assert_eq!(laptop.ok(&h, &["id", "export", "--format", "hex"]).0, phone.ok(&h, &["id", "export", "--format", "hex"]).0);
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(phone.dir().join("identity")).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn lan_link_gives_the_same_identity() {
    link_gives_the_same_identity(Net::Lan);
}

#[test]
fn relay_link_gives_the_same_identity() {
    link_gives_the_same_identity(Net::Relay);
}

#[test]
fn join_keeps_an_existing_identity_and_refuses_what_is_not_a_link() {
    let h = Harness::new(Net::Lan);
    let (laptop, phone) = (User::new(), User::new());
    laptop.ok(&h, &["id", "init", "--no-passphrase"]);
    phone.ok(&h, &["id", "init", "--no-passphrase"]);
    let before = phone.fingerprint(&h);
    // An identity is never replaced without --force, and that is said before any wait.
    let f = phone.run(&h, &["id", "join", "--no-passphrase", "52-lemon-tiger"]);
    assert_ne!(f.code(), Some(exit::OK));
    assert!(f.stderr.contains("an identity exists already"), "{}", f.stderr);
    // With --force it is replaced, and the old one kept beside it.
    let [o, n] = link(&h, &laptop, &phone, "53-lemon-tiger", &["--force"]);
    o.assert_code(exit::OK);
    n.assert_code(exit::OK);
    assert_eq!(phone.fingerprint(&h), laptop.fingerprint(&h));
    assert_ne!(before, laptop.fingerprint(&h));
    assert!(std::fs::read_dir(phone.dir()).unwrap().any(|e| e.unwrap().file_name().to_string_lossy().starts_with("identity.replaced-")));

    // `id join` against a sender of files: a clear refusal on both sides, no identity written.
    let fresh = User::new();
    let src = temp_dir("pqdrop-src-");
    std::fs::write(src.path().join("a.txt"), "x").unwrap();
    let mut s = h.send().args(["--code", "54-lemon-tiger"]).arg(src.path().join("a.txt")).without_terminal().spawn("sender");
    let mut n = h
        .command("id")
        .args(["join", "--no-passphrase", "--lan-bind", "127.0.0.1", "54-lemon-tiger"])
        .env("XDG_CONFIG_HOME", fresh.config.path())
        .without_terminal()
        .spawn("new device");
    let [s, n] = common::wait_all([&mut s, &mut n], WAIT);
    assert_ne!(n.code(), Some(exit::OK));
    assert!(n.stderr.contains("not linking an identity"), "{}", n.stderr);
    assert_ne!(s.code(), Some(exit::OK));
    assert!(!fresh.dir().join("identity").exists());

    // Without --yes and without a terminal to compare the check, nothing moves.
    let mut o = h
        .command("id")
        .args(["link", "--code", "56-lemon-tiger", "--lan-bind", "127.0.0.1"])
        .env("XDG_CONFIG_HOME", laptop.config.path())
        .without_terminal()
        .spawn("old");
    let mut n = h
        .command("id")
        .args(["join", "--no-passphrase", "--lan-bind", "127.0.0.1", "56-lemon-tiger"])
        .env("XDG_CONFIG_HOME", fresh.config.path())
        .without_terminal()
        .spawn("new");
    let [o, n] = common::wait_all([&mut o, &mut n], WAIT);
    assert!(o.stderr.contains("No terminal to compare the check"), "{}", o.stderr);
    assert_ne!(o.code(), Some(exit::OK));
    assert!(n.stderr.contains("the identity was not linked"), "{}", n.stderr);
    assert!(!fresh.dir().join("identity").exists());

    // A wrong code: nothing moves.
    let mut o = h
        .command("id")
        .args(["link", "--code", "55-lemon-tiger", "--lan-bind", "127.0.0.1"])
        .env("XDG_CONFIG_HOME", laptop.config.path())
        .without_terminal()
        .spawn("old");
    let mut n = h
        .command("id")
        .args(["join", "--no-passphrase", "--lan-bind", "127.0.0.1", "55-lemon-tigers"])
        .env("XDG_CONFIG_HOME", fresh.config.path())
        .without_terminal()
        .spawn("new");
    let [o, n] = common::wait_all([&mut o, &mut n], WAIT);
    o.assert_code(exit::WRONG_CODE);
    n.assert_code(exit::WRONG_CODE);
    assert!(!fresh.dir().join("identity").exists());
}

#[test]
fn at_a_terminal_the_receiver_is_asked_whether_to_save_the_sender() {
    use common::terminal::{shell_quote, Terminal};
    let h = Harness::new(Net::Relay);
    let (alice, bob) = (User::new(), User::new());
    alice.ok(&h, &["id", "init", "--no-passphrase"]);
    bob.ok(&h, &["id", "init", "--no-passphrase"]);
    let src = temp_dir("pqdrop-src-");
    std::fs::write(src.path().join("a.txt"), "x").unwrap();
    let out = temp_dir("pqdrop-out-");
    let relay = h.relay_addr().expect("relay").to_string();
    for (code, answer, saved) in [("61-lemon-tiger", "", false), ("62-lemon-tiger", "Alice Doe", true)] {
        let mut s = h
            .send()
            .args(["--code", code])
            .arg(src.path().join("a.txt"))
            .env("XDG_CONFIG_HOME", alice.config.path())
            .without_terminal()
            .spawn("sender");
        let cmd = [common::BIN, "receive", "--relay", &relay, "--yes", "--overwrite", "-o", path_str(out.path()), code];
        let line = cmd.iter().map(|a| shell_quote(a)).collect::<Vec<_>>().join(" ");
        let envs: [(&str, &std::ffi::OsStr); 2] = [("XDG_CONFIG_HOME", bob.config.path().as_os_str()), ("NO_COLOR", "1".as_ref())];
        let mut t = Terminal::spawn(&line, &envs, &["PQDROP_RELAY", "PQDROP_CODE"], std::time::Duration::from_secs(60));
        t.wait_for("as a contact? Type a name, or press Enter to skip", 1);
        t.type_text(&format!("{answer}\n"));
        let (rc, shown) = t.finish();
        assert_eq!(rc, Some(0), "{shown}");
        s.wait(WAIT).assert_code(exit::OK);
        let (list, _) = bob.ok(&h, &["contacts", "list", "--json"]);
        assert_eq!(list.contains("\"name\":\"Alice Doe\""), saved, "{list}\n{shown}");
    }
    // Now a contact: no question, and the offer names her.
    let mut s = h
        .send()
        .args(["--code", "63-lemon-tiger"])
        .arg(src.path().join("a.txt"))
        .env("XDG_CONFIG_HOME", alice.config.path())
        .without_terminal()
        .spawn("sender");
    let cmd = [common::BIN, "receive", "--relay", &relay, "--yes", "--overwrite", "-o", path_str(out.path()), "63-lemon-tiger"];
    let line = cmd.iter().map(|a| shell_quote(a)).collect::<Vec<_>>().join(" ");
    let envs: [(&str, &std::ffi::OsStr); 2] = [("XDG_CONFIG_HOME", bob.config.path().as_os_str()), ("NO_COLOR", "1".as_ref())];
    let t = Terminal::spawn(&line, &envs, &["PQDROP_RELAY", "PQDROP_CODE"], std::time::Duration::from_secs(60));
    let (rc, shown) = t.finish();
    assert_eq!(rc, Some(0), "{shown}");
    assert!(shown.contains("The sender is your contact Alice Doe"), "{shown}");
    assert!(!shown.contains("as a contact?"), "{shown}");
    s.wait(WAIT).assert_code(exit::OK);
}
