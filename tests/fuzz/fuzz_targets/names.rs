//! The name and room-name rules, fed arbitrary text. A name the server accepts is stored
//! and handed back (in `welcome`, in every event) and comes back in the next `hello`, so
//! it must parse again to itself, with the same collision keys; and it must keep the
//! rules' promises: NFC, trimmed, 1 to 32 characters, no control character, and for a
//! room no space.
#![no_main]

use chat_shared::limits::MAX_NAME;
use chat_shared::{Name, RoomName, fold};
use libfuzzer_sys::fuzz_target;
use unicode_normalization::UnicodeNormalization;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(name) = Name::parse(raw) {
        let text = name.as_str();
        promises(text);
        let again = Name::parse(text).expect("an accepted name parses again");
        assert_eq!(again, name, "an accepted name changed when parsed again");
        assert_eq!(again.keys(), name.keys());
        assert!(name.keys().collides(&again.keys()));
    }
    if let Ok(room) = RoomName::parse(raw) {
        let text = room.as_str();
        promises(text);
        assert!(!text.contains(' '), "a room name with a space: {text:?}");
        assert_eq!(RoomName::parse(text).as_ref(), Ok(&room));
        assert_eq!(RoomName::parse(&format!("#{text}")).as_ref(), Ok(&room));
        assert!(
            Name::parse(text).is_ok(),
            "a room name that is no valid name: {text:?}"
        );
    }
    let folded = fold(raw);
    assert!(
        folded.nfc().eq(folded.chars()),
        "a folded key that is not NFC"
    );
});

fn promises(text: &str) {
    let count = text.chars().count();
    assert!(
        (1..=MAX_NAME).contains(&count),
        "{count} characters: {text:?}"
    );
    assert_eq!(text.trim(), text, "an untrimmed name: {text:?}");
    assert!(
        text.nfc().eq(text.chars()),
        "a name that is not NFC: {text:?}"
    );
    assert!(
        !text.chars().any(char::is_control),
        "a control character in {text:?}"
    );
    assert!(!text.contains("  "), "a double space in {text:?}");
}
