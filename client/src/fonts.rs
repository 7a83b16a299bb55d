//! Fonts shipped inside the client, so that text reads the same on a bare machine: colour
//! emoji (Twemoji) and the scripts Fira Sans (iced's default) lacks: Arabic, Hebrew,
//! Devanagari, Bengali, Tamil, Thai (Noto Sans) and Hangul (Nanum Gothic). Chinese and
//! Japanese come from the system's fonts (a CJK font is over 15 MB). The licences are in
//! `client/fonts/LICENSES.md`.

/// Every shipped font, as the bytes of its file.
pub const ALL: [&[u8]; 8] = [
    include_bytes!("../fonts/TwemojiMozilla.ttf"),
    include_bytes!("../fonts/NotoSansArabic-Regular.ttf"),
    include_bytes!("../fonts/NotoSansHebrew-Regular.ttf"),
    include_bytes!("../fonts/NotoSansDevanagari-Regular.ttf"),
    include_bytes!("../fonts/NotoSansBengali-Regular.ttf"),
    include_bytes!("../fonts/NotoSansTamil-Regular.ttf"),
    include_bytes!("../fonts/NotoSansThai-Regular.ttf"),
    include_bytes!("../fonts/NanumGothic.ttf"),
];
