//! Saved accounts: the logins kept in the sessions store (shared with the
//! CLI) for the server in use, listed on the login screen and in the chat
//! screen's account menu; switching to one needs no password, and adding
//! another keeps the current one saved.
//!
//! The store is read on the network thread ([`Action::Accounts`]); tokens
//! never reach the state, which only knows the names.

use chatus_client::ServerUrl;
use chatus_client::protocol::Username;

use super::{LoginForm, Screen, State};
use crate::net::Action;

/// The accounts with a saved login on one server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SavedAccounts {
    /// The server they were listed for.
    pub server: Option<ServerUrl>,
    /// Their names, as the server spells them, in order.
    pub users: Vec<Username>,
}

impl State {
    /// The server whose saved accounts are of interest: the one in use on
    /// the chat screen, the form's on the login screen.
    pub fn accounts_server(&self) -> Option<ServerUrl> {
        match self.screen {
            Screen::Chat => self.server.clone(),
            Screen::Login => self.login.server().ok(),
        }
    }

    /// The saved accounts on [`State::accounts_server`] (empty until they
    /// are listed, or when the form names no server).
    pub fn saved_here(&self) -> &[Username] {
        match self.accounts_server() {
            Some(s) if self.saved.server.as_ref() == Some(&s) => &self.saved.users,
            _ => &[],
        }
    }

    /// Asks for the saved accounts on the form's server, unless they are
    /// listed already.
    pub(super) fn list_saved(&mut self) -> Vec<Action> {
        match self.accounts_server() {
            Some(server) if self.saved.server.as_ref() != Some(&server) => {
                vec![Action::Accounts(server)]
            }
            _ => Vec::new(),
        }
    }

    /// Asks for the saved accounts on the server of interest again (the
    /// store changed: a login was saved or forgotten).
    pub(super) fn relist_saved(&self) -> Vec<Action> {
        self.accounts_server()
            .map(Action::Accounts)
            .into_iter()
            .collect()
    }

    /// Enters as `user` with their saved login: from the login screen (no
    /// password), or switching from the chat screen (the current account
    /// stays saved; everything shown is replaced by the other account's).
    pub(super) fn use_saved(&mut self, user: Username) -> Vec<Action> {
        let Some(server) = self.accounts_server() else {
            self.login.error = self.login.server().err();
            return Vec::new();
        };
        if self.screen == Screen::Chat && self.me.as_ref().is_some_and(|me| me.same_account(&user))
        {
            return Vec::new();
        }
        let login = LoginForm {
            host: super::form_host(&server),
            port: server.port().to_string(),
            mode: self.login.mode,
            ..LoginForm::default()
        };
        self.reset(login);
        self.resume_session(server, user)
    }

    /// Leaves the current account (its login stays saved) for the login
    /// screen, to log in or register another on the same server.
    pub(super) fn add_account(&mut self) -> Vec<Action> {
        let login = LoginForm {
            host: self.login.host.clone(),
            port: self.login.port.clone(),
            ..LoginForm::default()
        };
        self.reset(login);
        // Whatever the old client still says is ignored from now on.
        self.session = self.session.next();
        let mut actions = vec![Action::Disconnect];
        actions.extend(self.relist_saved());
        actions
    }

    /// Replaces everything shown with a fresh state on the login screen
    /// with `login`, keeping what is not about one account: the session
    /// number, the wish to quit, the saved accounts, the fonts suggested.
    pub(super) fn reset(&mut self, login: LoginForm) {
        let fresh = State {
            login,
            quit: self.quit,
            session: self.session,
            saved: std::mem::take(&mut self.saved),
            font_gaps: std::mem::take(&mut self.font_gaps),
            save_folder: self.save_folder.take(),
            next_transfer: self.next_transfer,
            ..State::default()
        };
        *self = fresh;
    }
}
