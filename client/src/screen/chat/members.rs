//! The member list beside the log: natural order, long names shortened with "…" (the
//! whole name on hover), a filter for big rooms, and greyed while disconnected.

use iced::widget::{Column, container, scrollable, text, text_input, tooltip};
use iced::{Element, Fill, Theme};

use super::Message;
use crate::model::Members;
use crate::screen::style::{bold, muted, muted_color, unique_style};
use crate::widget::ellipsis::ellipsis;

/// The id of the filter box.
pub const FILTER: &str = "members-filter";
/// The list offers a filter from this many members on.
pub const FILTER_ABOVE: usize = 50;
/// The most names listed at once; the filter finds the others.
pub const MOST_SHOWN: usize = 300;
/// The width of the list.
pub const WIDTH: f32 = 200.0;

/// The member list. `online`: whether the list is current (else it is what was last
/// seen).
pub fn view<'a>(
    members: &'a Members,
    me: &'a str,
    filter: &'a str,
    online: bool,
) -> Element<'a, Message> {
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
            text_input("Filter names", filter)
                .id(FILTER)
                .on_input(Message::MemberFilter)
                .size(13)
                .padding(4),
        );
    }
    let wanted = chat_shared::fold(filter.trim());
    let me_folded = chat_shared::fold(me);
    let mut matching = members
        .iter()
        .filter(|name| wanted.is_empty() || chat_shared::fold(name).contains(&wanted));
    let mut names = Column::new().spacing(4);
    for name in matching.by_ref().take(MOST_SHOWN) {
        let mut line = ellipsis(name).size(13);
        if chat_shared::fold(name) == me_folded {
            line = line.font(bold());
        }
        let line: Element<'a, Message> = if online {
            line.into()
        } else {
            container(line)
                .style(|theme: &Theme| container::Style {
                    text_color: Some(muted_color(theme)),
                    ..container::Style::default()
                })
                .into()
        };
        names = names.push(tooltip(
            line,
            container(text(name).size(12))
                .padding(6)
                .style(container::bordered_box),
            tooltip::Position::Left,
        ));
    }
    let more = matching.count();
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
