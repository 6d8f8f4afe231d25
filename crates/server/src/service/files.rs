//! Files as the chat sees them: the file a `send` shares (a finished
//! upload of the sender's) and the files shared in a conversation.

use chatus_protocol::file::SharedFile;
use chatus_protocol::{Conversation, ErrorCode, FileId, FileInfo};

use crate::error::ApiError;
use crate::hub::Hub;
use crate::service::messages::resolve;
use crate::store::{Store, UserId};

/// The file a `send` from `user` shares: `unknown_file` unless it is an
/// upload of theirs, `upload_incomplete` until its last byte arrived.
pub(crate) async fn shared_file(
    store: &dyn Store,
    user: UserId,
    id: FileId,
) -> Result<FileInfo, ApiError> {
    let up = store
        .find_upload(id.clone())
        .await?
        .filter(|u| u.owner == user)
        .ok_or_else(|| {
            ApiError::reject(
                ErrorCode::UnknownFile,
                format!("You have no upload {id}; upload the file first."),
            )
        })?;
    up.info().ok_or_else(|| {
        ApiError::reject(
            ErrorCode::UploadIncomplete,
            format!("The upload {id} has not received all its bytes yet; resume it first."),
        )
    })
}

/// `list_files`: the files shared in a conversation `user` may read,
/// newest first, and whether there are more. The conversation is named
/// as registered.
pub(crate) async fn list(
    hub: &Hub,
    store: &dyn Store,
    user: UserId,
    conv: &Conversation,
    limit: u32,
) -> Result<(Conversation, Vec<SharedFile>, bool), ApiError> {
    let (named, found) = resolve(hub, store, user, conv).await?;
    let (files, more) = match found {
        Some((id, _)) => store.list_files(id, limit).await?,
        None => (Vec::new(), false),
    };
    Ok((named, files, more))
}
