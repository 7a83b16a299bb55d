//! The rooms beside the log: the one shown stands out, the others say how many messages
//! are new and how many of those mention you; and the dialog that lists the rooms people
//! are in, to join one.

use iced::widget::{Column, button, column, container, row, scrollable, space, text, text_input};
use iced::{Center, Element, Fill, Theme};

use super::Message;
use crate::model::{Joined, Rooms, room_key};
use crate::screen::style::{bold, muted, unique_style};
use crate::widget::ellipsis::ellipsis;

/// The width of the sidebar.
pub const WIDTH: f32 = 190.0;
/// The id of the dialog's name field.
pub const FIND: &str = "rooms-find";

/// The sidebar: who you are (with the account's menu), the invitations, the rooms (those
/// the user was put out of greyed, with a Join button), then the direct conversations.
/// Who the user is, for the top of the sidebar.
pub struct Me<'a> {
    /// The server's address.
    pub server: &'a str,
    /// Logged in to an account (which has a password to change).
    pub account: bool,
    /// The menu under the name is open.
    pub menu: bool,
}

/// The sidebar: the user (a menu under the name), invitations, the rooms and
/// conversations.
pub fn view<'a>(
    rooms: &'a Rooms,
    me: &Me<'a>,
    invitations: Option<Element<'a, Message>>,
) -> Element<'a, Message> {
    let active = rooms.active().map(|joined| joined.key.as_str());
    let mut list = Column::new().spacing(2);
    let mut directs = Column::new().spacing(2);
    for joined in rooms.iter() {
        let shown = active == Some(joined.key.as_str());
        let unread = joined.unread > 0;
        let (sign, label) = match joined.with() {
            Some(with) => ("@", with),
            None => ("#", joined.room.name.as_str()),
        };
        let out = joined.room.out.is_some();
        let mut name = ellipsis(label).size(14);
        if (unread || shown) && !out {
            name = name.font(bold());
        }
        let name: Element<'a, Message> = if out {
            container(name)
                .style(|theme: &Theme| container::Style {
                    text_color: Some(crate::screen::style::muted_color(theme)),
                    ..container::Style::default()
                })
                .into()
        } else {
            name.into()
        };
        let mut line = row![text(sign).size(14).style(muted), name]
            .spacing(1)
            .align_y(Center);
        if out {
            line = line.push(
                button(text("Join").size(11))
                    .on_press(Message::Moderation(super::moderation::Message::Join(
                        joined.room.name.clone(),
                    )))
                    .padding([0, 6]),
            );
        }
        if joined.mentions > 0 {
            line = line.push(badge(&format!("@{}", joined.mentions), true));
        }
        if unread {
            line = line.push(badge(&joined.unread.to_string(), false));
        }
        let key = joined.room.name.clone();
        let entry = button(line.spacing(6))
            .on_press(Message::Switch(key))
            .width(Fill)
            .padding([4, 8])
            .style(move |theme: &Theme, status| {
                if shown {
                    button::primary(theme, button::Status::Active)
                } else {
                    button::text(theme, status)
                }
            });
        if joined.is_direct() {
            directs = directs.push(entry);
        } else {
            list = list.push(entry);
        }
    }
    if !rooms.iter().any(|joined| !joined.is_direct()) {
        list = list.push(text("You are in no room.").size(13).style(muted));
    }
    if rooms.iter().any(Joined::is_direct) {
        list = list
            .push(space::vertical().height(8))
            .push(text("Direct messages").size(12).font(bold()).style(muted))
            .push(directs);
    }
    let browse = button(text("Browse rooms…").size(13))
        .on_press(Message::Rooms(true))
        .style(button::text)
        .padding([4, 8]);
    let title = me_block(rooms.me(), me);
    let mut side = column![title].spacing(8).padding([12, 8]);
    if let Some(invitations) = invitations {
        side = side.push(invitations);
    }
    container(
        side.push(text("Rooms").size(12).font(bold()).style(muted))
            .push(scrollable(list).height(Fill))
            .push(browse),
    )
    .width(WIDTH)
    .height(Fill)
    .into()
}

/// The user's name (a button that opens its menu: change password, switch account, log
/// out) and the server.
fn me_block<'a>(name: &str, me: &Me<'a>) -> Element<'a, Message> {
    let mut title = column![
        button(text(format!("{name} ▾")).size(14).font(bold()))
            .on_press(Message::AccountMenu(!me.menu))
            .style(button::text)
            .padding(0),
        text(me.server).size(12).style(muted),
    ]
    .spacing(2);
    if me.menu {
        let item = |label: &'static str, message: Message| {
            button(text(label).size(13))
                .on_press(message)
                .style(button::text)
                .padding([2, 4])
                .width(Fill)
        };
        let mut menu = column![].spacing(2);
        if me.account {
            menu = menu.push(item("Change password…", Message::Account(true)));
        }
        menu = menu
            .push(item("Switch account…", Message::LogOut { switch: true }))
            .push(item("Log out", Message::LogOut { switch: false }));
        title = title.push(container(menu).padding(4).style(container::bordered_box));
    }
    title.into()
}

/// A count in a pill: red for mentions.
fn badge<'a>(count: &str, mention: bool) -> Element<'a, Message> {
    container(
        text(count.to_string())
            .size(11)
            .font(bold())
            .style(unique_style(
                move |theme: &Theme| text::Style {
                    color: Some(if mention {
                        theme.extended_palette().danger.strong.text
                    } else {
                        theme.extended_palette().primary.strong.text
                    }),
                },
                count,
            )),
    )
    .padding([1, 6])
    .style(move |theme: &Theme| {
        let palette = theme.extended_palette();
        container::Style {
            background: Some(
                if mention {
                    palette.danger.strong.color
                } else {
                    palette.primary.strong.color
                }
                .into(),
            ),
            border: iced::Border {
                radius: 8.0.into(),
                ..iced::Border::default()
            },
            ..container::Style::default()
        }
    })
    .into()
}

/// The rooms people are in, most people first, filtered by what is typed; each can be
/// joined (or shown, if the user is in it), and a name nobody uses yet can be made.
pub fn dialog<'a>(rooms: &'a Rooms, find: &'a str) -> Element<'a, Message> {
    let wanted = room_key(find);
    let mut list = Column::new().spacing(4);
    let mut exact = false;
    match rooms.directory() {
        None => list = list.push(text("Asking the server…").size(13).style(muted)),
        Some(directory) => {
            let mut shown = 0;
            for entry in directory.iter().filter(|entry| {
                wanted.is_empty() || chat_shared::fold(&entry.room).contains(&wanted)
            }) {
                exact |= chat_shared::fold(&entry.room) == wanted;
                let inside = rooms.get(&entry.room).is_some();
                let people = match entry.users {
                    1 => "1 person".to_string(),
                    n => format!("{n} people"),
                };
                list = list.push(
                    row![
                        text(format!("#{}", entry.room))
                            .size(14)
                            .font(bold())
                            .width(Fill),
                        text(people.clone())
                            .size(12)
                            .style(unique_style(muted, &people)),
                        button(text(if inside { "Open" } else { "Join" }).size(13))
                            .on_press(Message::JoinRoom(entry.room.clone()))
                            .padding([2, 10])
                            .style(if inside {
                                button::secondary
                            } else {
                                button::primary
                            }),
                    ]
                    .spacing(8)
                    .align_y(Center),
                );
                shown += 1;
            }
            if shown == 0 && wanted.is_empty() {
                list = list.push(text("Nobody is in any room.").size(13).style(muted));
            }
        }
    }
    let name = find.trim().trim_start_matches('#');
    if !name.is_empty() && !exact && chat_shared::RoomName::parse(name).is_ok() {
        list = list.push(
            row![
                text(format!("#{name}")).size(14).font(bold()).width(Fill),
                text("new room").size(12).style(muted),
                button(text("Make").size(13))
                    .on_press(Message::JoinRoom(name.to_string()))
                    .padding([2, 10])
                    .style(button::primary),
            ]
            .spacing(8)
            .align_y(Center),
        );
    }
    column![
        text("Rooms").size(16).font(bold()),
        text_input("Find a room, or name a new one", find)
            .id(FIND)
            .on_input(Message::FindRoom)
            .on_submit(Message::JoinRoom(name.to_string()))
            .size(14)
            .padding(6),
        scrollable(list).height(320),
        row![
            space::horizontal(),
            button(text("Close").size(13))
                .on_press(Message::Rooms(false))
                .style(button::secondary),
        ],
    ]
    .spacing(10)
    .width(440)
    .into()
}
