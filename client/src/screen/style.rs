//! Looks shared by the screens: fonts, muted text, a colour per name, times and dates.

use std::sync::OnceLock;

use chrono::Datelike;
use iced::widget::text;
use iced::{Color, Font, Theme, font};

use crate::widget::unique;

/// A text style that stays unique to `content` (see [`unique`]).
pub fn unique_style<F>(style: F, content: &str) -> impl Fn(&Theme) -> text::Style + use<F>
where
    F: Fn(&Theme) -> text::Style,
{
    let content = content.to_string();
    move |theme| {
        let mut style = style(theme);
        style.color = Some(unique(
            style
                .color
                .unwrap_or(theme.extended_palette().background.base.text),
            &content,
        ));
        style
    }
}

/// The bold variant of the default font.
pub fn bold() -> Font {
    Font {
        weight: font::Weight::Bold,
        ..Font::DEFAULT
    }
}

/// The italic variant of the default font.
pub fn italic() -> Font {
    Font {
        style: font::Style::Italic,
        ..Font::DEFAULT
    }
}

/// Text that steps back: times, joins and leaves, hints.
pub fn muted(theme: &Theme) -> text::Style {
    text::Style {
        color: Some(muted_color(theme)),
    }
}

/// The colour of [`muted`] text.
pub fn muted_color(theme: &Theme) -> Color {
    theme
        .extended_palette()
        .background
        .base
        .text
        .scale_alpha(0.6)
}

/// The hues names are drawn in. Evenly spaced hues are not evenly apart to the eye once
/// each is darkened or lightened to read on the background (30° apart, two reds or two
/// greens were hard to tell apart): these nine were chosen so that every two of them
/// differ by a CIELAB ΔE of at least 36 on both themes, and none looks like a link.
const NAME_HUES: [f32; 9] = [5.0, 30.0, 60.0, 110.0, 160.0, 190.0, 260.0, 300.0, 330.0];

/// A colour for `name` that stays the same across sessions and reads well on the theme's
/// background: one of [`NAME_HUES`], made dark (light themes) or light (dark themes)
/// enough for a contrast of at least 4.5:1, as WCAG asks of text.
pub fn name_color(name: &str, theme: &Theme) -> Color {
    static LIGHT: OnceLock<[Color; NAME_HUES.len()]> = OnceLock::new();
    static DARK: OnceLock<[Color; NAME_HUES.len()]> = OnceLock::new();
    // FNV-1a over the folded name: stable across runs and platforms, unlike the std hasher.
    let hash = chat_shared::fold(name)
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    let palette = theme.extended_palette();
    let background = palette.background.base.color;
    let colors = if palette.is_dark { &DARK } else { &LIGHT }
        .get_or_init(|| NAME_HUES.map(|hue| readable(hue, background)));
    colors[(hash % NAME_HUES.len() as u64) as usize]
}

/// The hue at the lightness closest to the middle that still reads on `background`.
fn readable(hue: f32, background: Color) -> Color {
    let dark_background = luminance(background) < 0.5;
    let mut lightness: f32 = 0.5;
    loop {
        let color = hsl(hue, 0.75, lightness);
        if contrast(color, background) >= 4.5 || !(0.0..=1.0).contains(&lightness) {
            return color;
        }
        lightness += if dark_background { 0.02 } else { -0.02 };
    }
}

/// WCAG relative luminance.
fn luminance(color: Color) -> f32 {
    let linear = |c: f32| {
        if c <= 0.040_45 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * linear(color.r) + 0.7152 * linear(color.g) + 0.0722 * linear(color.b)
}

/// WCAG contrast ratio of two colours.
fn contrast(a: Color, b: Color) -> f32 {
    let (a, b) = (luminance(a), luminance(b));
    (a.max(b) + 0.05) / (a.min(b) + 0.05)
}

/// The colour of links.
pub fn link_color(theme: &Theme) -> Color {
    let palette = theme.extended_palette();
    if palette.is_dark {
        hsl(205.0, 0.85, 0.70)
    } else {
        hsl(212.0, 0.85, 0.40)
    }
}

/// A colour from hue (degrees), saturation and lightness (0 to 1).
fn hsl(hue: f32, saturation: f32, lightness: f32) -> Color {
    let chroma = (1.0 - (2.0 * lightness - 1.0).abs()) * saturation;
    let sector = hue / 60.0;
    let second = chroma * (1.0 - (sector % 2.0 - 1.0).abs());
    let (red, green, blue) = match sector as u32 {
        0 => (chroma, second, 0.0),
        1 => (second, chroma, 0.0),
        2 => (0.0, chroma, second),
        3 => (0.0, second, chroma),
        4 => (second, 0.0, chroma),
        _ => (chroma, 0.0, second),
    };
    let lift = lightness - chroma / 2.0;
    Color::from_rgb(red + lift, green + lift, blue + lift)
}

pub use crate::model::text::{clock, local};

/// The full local date and time of a server time, for a tooltip.
pub fn full_time(ms: u64) -> String {
    local(ms).map_or_else(String::new, |t| {
        t.format("%A, %-d %B %Y, %H:%M:%S").to_string()
    })
}

/// What a day separator says: "Today", "Yesterday", or the date.
pub fn day_label(day: chrono::NaiveDate, today: chrono::NaiveDate) -> String {
    if day == today {
        "Today".into()
    } else if today.pred_opt() == Some(day) {
        "Yesterday".into()
    } else if day.year() == today.year() {
        day.format("%A, %-d %B").to_string()
    } else {
        day.format("%A, %-d %B %Y").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_colours_are_stable_and_readable_on_both_themes() {
        let light = Theme::Light;
        let dark = Theme::Dark;
        assert_eq!(name_color("Alice", &light), name_color("alice", &light));
        for name in [
            "alice", "bob", "carol", "dave", "erin", "frank", "Ahmed_43", "李",
        ] {
            for theme in [&light, &dark] {
                let bg = theme.extended_palette().background.base.color;
                let c = contrast(name_color(name, theme), bg);
                assert!(c >= 4.5, "{name} on {theme:?}: contrast {c:.2}");
            }
        }
        let distinct: std::collections::HashSet<String> = ["alice", "bob", "carol", "dave"]
            .iter()
            .map(|n| format!("{:?}", name_color(n, &light)))
            .collect();
        assert!(distinct.len() >= 3, "names should not all share a colour");
        assert_ne!(
            name_color("alice", &light),
            name_color("bob", &light),
            "the two people of every example"
        );
    }

    /// CIELAB of an sRGB colour (D65).
    fn lab(color: Color) -> [f32; 3] {
        let linear = |c: f32| {
            if c <= 0.040_45 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        let rgb = [linear(color.r), linear(color.g), linear(color.b)];
        let mix = |row: [f32; 3]| row.iter().zip(rgb).map(|(k, c)| k * c).sum::<f32>();
        let curve = |t: f32| {
            if t > 0.008_856 {
                t.cbrt()
            } else {
                7.787 * t + 16.0 / 116.0
            }
        };
        let xyz = [
            curve(mix([0.4124, 0.3576, 0.1805]) / 0.950_47),
            curve(mix([0.2126, 0.7152, 0.0722])),
            curve(mix([0.0193, 0.1192, 0.9505]) / 1.088_83),
        ];
        [
            116.0 * xyz[1] - 16.0,
            500.0 * (xyz[0] - xyz[1]),
            200.0 * (xyz[1] - xyz[2]),
        ]
    }

    fn delta(a: [f32; 3], b: [f32; 3]) -> f32 {
        a.iter()
            .zip(b)
            .map(|(p, q)| (p - q).powi(2))
            .sum::<f32>()
            .sqrt()
    }

    #[test]
    fn every_two_name_colours_are_told_apart_at_a_glance() {
        for theme in [Theme::Light, Theme::Dark] {
            let background = theme.extended_palette().background.base.color;
            let colors: Vec<[f32; 3]> = NAME_HUES
                .iter()
                .map(|hue| lab(readable(*hue, background)))
                .collect();
            let link = lab(link_color(&theme));
            for (i, a) in colors.iter().enumerate() {
                let from_link = delta(*a, link);
                assert!(
                    from_link >= 20.0,
                    "hue {} looks like a link on {theme:?}: ΔE {from_link:.1}",
                    NAME_HUES[i]
                );
                for (j, b) in colors.iter().enumerate().skip(i + 1) {
                    let delta = delta(*a, *b);
                    assert!(
                        delta >= 30.0,
                        "hues {} and {} on {theme:?}: ΔE {delta:.1}",
                        NAME_HUES[i],
                        NAME_HUES[j]
                    );
                }
            }
        }
    }

    #[test]
    fn day_labels() {
        let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 25).expect("date");
        assert_eq!(day_label(today, today), "Today");
        assert_eq!(
            day_label(today.pred_opt().expect("date"), today),
            "Yesterday"
        );
        let earlier = chrono::NaiveDate::from_ymd_opt(2026, 3, 2).expect("date");
        assert_eq!(day_label(earlier, today), "Monday, 2 March");
        let last_year = chrono::NaiveDate::from_ymd_opt(2025, 3, 2).expect("date");
        assert_eq!(day_label(last_year, today), "Sunday, 2 March 2025");
    }
}
