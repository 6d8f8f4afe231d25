//! Room moderation on [`Client`]: topics, roles, kicks, bans, mutes,
//! invite-only rooms and the owner's audit log (see "Rooms and
//! moderation" in docs/PROTOCOL.md). Each action is answered by the
//! [`Sent`] of its `moderated` event once the server stored it; the event
//! itself arrives as [`crate::Event::Change`] like an edit.

use std::time::Duration;

use chatus_protocol::message::Sent;
use chatus_protocol::moderation::{
    AuditLog, AuditPage, Description, Mute, Reason, Role, Sanction, SetInviteOnly, SetRole,
    SetTopic, Topic, Unmute,
};
use chatus_protocol::{Request, RoomName, Seq, ServerMessage, Username};

use crate::error::Error;

pub mod command;
use crate::handle::{Client, unexpected};

impl Client {
    /// Sends a moderation request and returns its event's [`Sent`].
    async fn moderate(&self, request: Request) -> Result<Sent, Error> {
        match self.request(request).await? {
            ServerMessage::Sent(s) => Ok(s),
            other => Err(unexpected(&other)),
        }
    }

    /// Sets a room's topic, and its description when given (owner or
    /// moderator).
    pub async fn set_topic(
        &self,
        room: RoomName,
        topic: Topic,
        description: Option<Description>,
    ) -> Result<Sent, Error> {
        self.moderate(Request::SetTopic(SetTopic {
            room,
            topic,
            description,
        }))
        .await
    }

    /// Makes a member a moderator, or a moderator a member (owner only).
    pub async fn set_role(
        &self,
        room: RoomName,
        user: Username,
        role: Role,
    ) -> Result<Sent, Error> {
        self.moderate(Request::SetRole(SetRole { room, user, role }))
            .await
    }

    /// Takes a member out of a room; they may join a public room again.
    pub async fn kick(
        &self,
        room: RoomName,
        user: Username,
        reason: Option<Reason>,
    ) -> Result<Sent, Error> {
        self.moderate(Request::Kick(Sanction { room, user, reason }))
            .await
    }

    /// Bans a user from a room: out, and unable to join, list or read it.
    pub async fn ban(
        &self,
        room: RoomName,
        user: Username,
        reason: Option<Reason>,
    ) -> Result<Sent, Error> {
        self.moderate(Request::Ban(Sanction { room, user, reason }))
            .await
    }

    /// Lifts a ban.
    pub async fn unban(&self, room: RoomName, user: Username) -> Result<Sent, Error> {
        self.moderate(Request::Unban(Sanction {
            room,
            user,
            reason: None,
        }))
        .await
    }

    /// Makes a member read-only in a room for `duration` (whole seconds,
    /// at least one).
    pub async fn mute(
        &self,
        room: RoomName,
        user: Username,
        duration: Duration,
        reason: Option<Reason>,
    ) -> Result<Sent, Error> {
        self.moderate(Request::Mute(Mute {
            room,
            user,
            seconds: duration.as_secs().max(1),
            reason,
        }))
        .await
    }

    /// Ends a mute early.
    pub async fn unmute(&self, room: RoomName, user: Username) -> Result<Sent, Error> {
        self.moderate(Request::Unmute(Unmute { room, user })).await
    }

    /// Makes a room invite-only (`on`) or open again.
    pub async fn set_invite_only(&self, room: RoomName, on: bool) -> Result<Sent, Error> {
        self.moderate(Request::SetInviteOnly(SetInviteOnly { room, on }))
            .await
    }

    /// A page of a room's moderation events, newest first, before
    /// `before` (owner only).
    pub async fn audit_log(
        &self,
        room: RoomName,
        before: Option<Seq>,
        limit: Option<u32>,
    ) -> Result<AuditPage, Error> {
        match self
            .request(Request::AuditLog(AuditLog {
                room,
                before,
                limit,
            }))
            .await?
        {
            ServerMessage::AuditLog(p) => Ok(p),
            other => Err(unexpected(&other)),
        }
    }
}
