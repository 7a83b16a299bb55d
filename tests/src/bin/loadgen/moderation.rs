//! `fanout --moderated`: before the run, the rooms the clients will be in get 20 ops, 50
//! bans and 50 mutes (of names that never connect), set by an administrator (`lg-admin`,
//! password `loadgen password admin`; run the server with `--admins lg-admin`). Every
//! post is then checked against a room with moderation in it.

use std::net::SocketAddr;

use chat_shared::{ClientFrame, Frame, Role, ServerFrame};
use futures_lite::AsyncWriteExt;

use crate::accounts::{account_hello, account_name, register_accounts, say_hello};
use crate::clients::room_of;

/// Ops given in each room.
pub(crate) const OPS: usize = 20;
/// Names banned, and names muted, in each room.
pub(crate) const BANS: usize = 50;

/// Gives each room the clients will be in (`rooms`: 0 for the default room only) its ops,
/// bans and mutes, and waits until the last is recorded.
pub(crate) async fn moderate_rooms(addr: SocketAddr, rooms: usize) -> Result<(), String> {
    register_accounts(addr, OPS).await?;
    let admin =
        |register| account_hello("lg-admin".into(), "loadgen password admin".into(), register);
    let (mut writer, mut reader, welcome) = match say_hello(None, addr, &admin(true)).await? {
        (_, _, ServerFrame::Rejected { .. }) => say_hello(None, addr, &admin(false)).await?,
        answered => answered,
    };
    let (default_room, is_admin) = match &welcome {
        ServerFrame::Welcome { rooms, admin, .. } => (rooms.first().cloned(), *admin),
        other => return Err(format!("lg-admin cannot log in: {other:?}")),
    };
    if !is_admin {
        return Err("--moderated needs the server run with --admins lg-admin".into());
    }
    let names: Vec<String> = if rooms == 0 {
        default_room.into_iter().collect()
    } else {
        (0..rooms).filter_map(|i| room_of(i, rooms)).collect()
    };
    let mut frames = Vec::new();
    for room in &names {
        if rooms > 0 {
            frames.push(ClientFrame::Join {
                room: room.clone(),
                since: None,
            });
        }
        frames.extend((0..OPS).map(|k| ClientFrame::Role {
            room: room.clone(),
            name: account_name(k),
            role: Role::Op,
        }));
        for k in 0..BANS {
            frames.push(ClientFrame::Ban {
                room: Some(room.clone()),
                name: format!("lg-banned-{k}"),
                message: Some("a benchmark's ban".into()),
                minutes: Some(24 * 60),
                address: false,
            });
            frames.push(ClientFrame::Mute {
                room: room.clone(),
                name: format!("lg-muted-{k}"),
                minutes: None,
            });
        }
    }
    let mut bytes = Vec::new();
    for frame in &frames {
        bytes.extend_from_slice(Frame::encode(frame).as_bytes());
    }
    writer.write_all(&bytes).await.map_err(|e| e.to_string())?;
    writer.flush().await.map_err(|e| e.to_string())?;
    let last_room = names.last().cloned().unwrap_or_default();
    let last = format!("lg-muted-{}", BANS - 1);
    loop {
        match reader.next().await {
            Some(Ok(ServerFrame::Mute { room, name, .. })) if room == last_room && name == last => {
                break;
            }
            Some(Ok(ServerFrame::Error { message, .. })) => {
                return Err(format!("moderating the rooms: {message}"));
            }
            Some(Ok(_)) => {}
            other => return Err(format!("moderating the rooms: {other:?}")),
        }
    }
    let _ = writer
        .write_all(Frame::encode(&ClientFrame::Bye).as_bytes())
        .await;
    Ok(())
}
