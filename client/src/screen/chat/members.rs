//! The member list beside the log: owners, ops, then the rest, each in natural order,
//! long names shortened with "…" (the whole name on hover), a menu of what the user may
//! do to each, a filter for big rooms, and greyed while disconnected.

use chat_shared::Role;
use iced::widget::{
    Column, button, column, container, mouse_area, row, scrollable, text, text_input,
};
use iced::{Center, Element, Fill, Theme};

use super::Message;
use super::moderation::Message as MenuMessage;
use crate::model::{Members, Moderation};
use crate::screen::style::{bold, clock, muted, muted_color, unique_style};
use crate::widget::ellipsis::ellipsis;

/// The id of the filter box.
pub const FILTER: &str = "members-filter";
/// The list offers a filter from this many members on.
pub const FILTER_ABOVE: usize = 50;
/// The most names listed at once; the filter finds the others.
pub const MOST_SHOWN: usize = 300;
/// The width of the list.
pub const WIDTH: f32 = 200.0;

/// What the member list shows beyond the names.
pub struct Look<'a, 'b> {
    /// The user.
    pub me: &'a str,
    /// What is typed in the filter.
    pub filter: &'a str,
    /// Whether the list is current (else it is what was last seen).
    pub online: bool,
    /// The room's roles (for the badges and the order).
    pub moderation: &'a Moderation,
    /// The member whose menu is open.
    pub menu: Option<&'a str>,
    /// What the user may do to a member: the menu's entries (none: no menu).
    pub actions: &'b dyn Fn(&str) -> Vec<(String, Message)>,
    /// What the card of a member says beyond the name.
    pub card: &'b dyn Fn(&str) -> Card,
}

/// What is known of a member, for the card a click on the name opens.
#[derive(Debug, Clone, Default)]
pub struct Card {
    /// When they came in, if this client saw it (server time, ms).
    pub since: Option<u64>,
    /// Whether the name is an account (`None`: not known; the protocol says so only of
    /// those with a role and those one has a conversation with).
    pub account: Option<bool>,
    /// "Message": open a conversation with them (the user is an account, they are not
    /// the user).
    pub message: Option<Message>,
}

/// The member list: owners, then ops, then everyone else, each in natural order, with a
/// badge for a role; a member the user may act on has a menu ("…", or a right click).
pub fn view<'a>(members: &'a Members, look: &Look<'a, '_>) -> Element<'a, Message> {
    let online = look.online;
    let title = if online {
        format!("Online — {}", members.len())
    } else {
        format!("Last seen online — {}", members.len())
    };
    let mut list = Column::new()
        .spacing(4)
        .push(
            text(title.clone())
                .size(13)
                .font(bold())
                .style(unique_style(
                    if online { text::default } else { muted },
                    &title,
                )),
        );
    if members.len() > FILTER_ABOVE {
        list = list.push(
            text_input("Filter names", look.filter)
                .id(FILTER)
                .on_input(Message::MemberFilter)
                .size(13)
                .padding(4),
        );
    }
    let wanted = chat_shared::fold(look.filter.trim());
    let me_folded = chat_shared::fold(look.me);
    let rank = |name: &str| match look.moderation.role(name) {
        Role::Owner => 0,
        Role::Op => 1,
        Role::Member | Role::Unknown => 2,
    };
    let matching = members
        .iter()
        .filter(|name| wanted.is_empty() || chat_shared::fold(name).contains(&wanted));
    // Roles are few: those with one go first, the rest keep their natural order.
    let mut ranked: Vec<&str> = matching.clone().filter(|name| rank(name) < 2).collect();
    ranked.sort_by_key(|name| rank(name));
    let mut ordered = ranked
        .into_iter()
        .chain(matching.filter(|name| rank(name) == 2));
    let mut names = Column::new().spacing(4);
    for name in ordered.by_ref().take(MOST_SHOWN) {
        names = names.push(member_row(name, chat_shared::fold(name) == me_folded, look));
    }
    let more = ordered.count();
    if more > 0 {
        let words = format!("{more} more; filter to find them");
        names = names.push(
            text(words.clone())
                .size(12)
                .style(unique_style(muted, &words)),
        );
    }
    list = list.push(scrollable(names).height(Fill).width(Fill));
    container(list.padding(12).height(Fill))
        .width(WIDTH)
        .height(Fill)
        .into()
}

/// One member: the name (bold for the user), its role's badge, its menu.
fn member_row<'a>(name: &'a str, me: bool, look: &Look<'a, '_>) -> Element<'a, Message> {
    let mut line = ellipsis(name).size(13);
    if me {
        line = line.font(bold());
    }
    let line: Element<'a, Message> = if look.online {
        line.into()
    } else {
        container(line)
            .style(|theme: &Theme| container::Style {
                text_color: Some(muted_color(theme)),
                ..container::Style::default()
            })
            .into()
    };
    // A click on the name opens the member's card (and, for a moderator, the actions).
    let open = look.menu == Some(name);
    let line = button(line)
        .on_press(Message::Moderation(MenuMessage::MemberMenu(
            (!open).then(|| name.to_string()),
        )))
        .style(button::text)
        .padding(0);
    let badge = match look.moderation.role(name) {
        Role::Owner => Some("owner"),
        Role::Op => Some("op"),
        Role::Member | Role::Unknown => None,
    };
    let mut head = row![container(line).width(Fill)].spacing(4).align_y(Center);
    if let Some(badge) = badge {
        head = head.push(text(badge).size(11).style(muted));
    }
    let actions = if look.online {
        (look.actions)(name)
    } else {
        Vec::new()
    };
    if actions.is_empty() && !open {
        return head.into();
    }
    if !actions.is_empty() {
        head = head.push(
            button(text("…").size(12))
                .on_press(Message::Moderation(MenuMessage::MemberMenu(
                    (!open).then(|| name.to_string()),
                )))
                .style(button::text)
                .padding([0, 4]),
        );
    }
    let head = mouse_area(head).on_right_press(Message::Moderation(MenuMessage::MemberMenu(Some(
        name.to_string(),
    ))));
    if !open {
        return head.into();
    }
    let card = (look.card)(name);
    let mut facts = vec![match (card.since, look.online) {
        (Some(since), true) => format!("Online since {}", clock(since)),
        (None, true) => "Online".to_string(),
        (_, false) => "Last seen online".to_string(),
    }];
    match card.account {
        Some(true) => facts.push("Account".into()),
        Some(false) => facts.push("Guest".into()),
        None => {}
    }
    let mut menu = Column::new()
        .spacing(2)
        .padding(iced::Padding::ZERO.left(8));
    for fact in facts {
        menu = menu.push(
            text(fact.clone())
                .size(12)
                .style(unique_style(muted, &fact)),
        );
    }
    if let Some(message) = card.message {
        menu = menu.push(
            button(text("Message").size(12))
                .on_press(message)
                .style(button::text)
                .padding([1, 4]),
        );
    }
    for (label, message) in actions {
        menu = menu.push(
            button(text(label).size(12))
                .on_press(message)
                .style(button::text)
                .padding([1, 4]),
        );
    }
    container(column![head, menu].spacing(2))
        .style(container::bordered_box)
        .padding(2)
        .into()
}
