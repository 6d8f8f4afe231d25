//! The device store's passphrase changed by the client that has it open
//! (the desktop app's "Change passphrase…"): a wrong current passphrase
//! changes nothing, and after the change the running client goes on
//! saving what it learns, under the new passphrase only.

use chatus_client::{
    Client, Credentials, Error, KeySource, Opened, Passphrase, Resume, change_passphrase,
};

use crate::e2ee::{body, connect, next_in, peer, raw_history};
use crate::util::*;

/// The passphrase `client_config` seals test devices with.
const FIRST: &str = "client tests";

/// Regression: a running client whose store was sealed anew (then only by
/// `chatus passphrase change` in another process) stopped saving it, so
/// the keys of every message received afterwards were lost at exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_client_changes_its_passphrase_and_goes_on_saving() {
    let server = TestServer::start().await;
    let dirs = [(); 2].map(|()| tempfile::tempdir().unwrap());
    let (alice, mut alice_events) = connect(&server, "alice", dirs[0].path(), true).await;
    let (bob, _bob_events) = connect(&server, "bob", dirs[1].path(), true).await;

    let wrong = alice
        .change_passphrase(Passphrase::new("not it"), Passphrase::new("second"))
        .await;
    assert!(matches!(wrong, Err(Error::WrongPassphrase(_))), "{wrong:?}");
    let empty = alice
        .change_passphrase(Passphrase::new(FIRST), Passphrase::new(""))
        .await;
    assert!(empty.is_err(), "an empty passphrase is refused: {empty:?}");
    alice
        .change_passphrase(Passphrase::new(FIRST), Passphrase::new("second"))
        .await
        .unwrap();

    // A message whose key arrives after the change: the running client
    // reads it, and keeps its key in the store sealed anew.
    let secret = "the ferry leaves at six";
    bob.send(peer("alice"), body(secret)).await.unwrap();
    let got = next_in(&mut alice_events, &peer("bob")).await.unwrap();
    assert_eq!(got.body.unwrap().as_str(), secret);
    alice.quit().await;

    // The old passphrase no longer opens the store.
    let url = server.url();
    let refused = change_passphrase(
        dirs[0].path(),
        &url,
        &user("alice"),
        &Passphrase::new(FIRST),
        &Passphrase::new("third"),
    );
    assert!(
        matches!(refused, Err(Error::WrongPassphrase(_))),
        "{refused:?}"
    );

    // The new one does, with the key received after the change in it.
    let mut config = client_config(
        url,
        Credentials::Login {
            username: user("alice"),
            password: password("alice"),
        },
    );
    config.e2ee_dir = Some(dirs[0].path().to_owned());
    config.key_source = KeySource::passphrase(Passphrase::new("second"));
    config.resume = Resume::FromNow;
    let (alice, _events, _) = Client::connect(config).await.unwrap();
    let mut page = raw_history(&alice, peer("bob")).await;
    assert_eq!(page.len(), 1);
    assert!(
        matches!(alice.open(&mut page[0]), Opened::Decrypted { .. }),
        "{:?}",
        page[0]
    );
    assert_eq!(page[0].body.as_ref().unwrap().as_str(), secret);
}
