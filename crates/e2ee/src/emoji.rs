//! The 64 SAS emoji and their English names, as the Matrix specification
//! lists them ("SAS method: emoji"), indexed by the six-bit numbers
//! vodozemac derives. Using Matrix's table means a user who knows it from
//! another client sees the same pictures and names.

/// One emoji of the SAS table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Emoji {
    /// The emoji itself.
    pub symbol: &'static str,
    /// Its English name, to show beside it.
    pub name: &'static str,
}

/// The table: index `i` is the emoji for the six-bit number `i`.
pub const EMOJI: [Emoji; 64] = [
    Emoji {
        symbol: "🐶",
        name: "Dog",
    }, // 0
    Emoji {
        symbol: "🐱",
        name: "Cat",
    }, // 1
    Emoji {
        symbol: "🦁",
        name: "Lion",
    }, // 2
    Emoji {
        symbol: "🐎",
        name: "Horse",
    }, // 3
    Emoji {
        symbol: "🦄",
        name: "Unicorn",
    }, // 4
    Emoji {
        symbol: "🐷",
        name: "Pig",
    }, // 5
    Emoji {
        symbol: "🐘",
        name: "Elephant",
    }, // 6
    Emoji {
        symbol: "🐰",
        name: "Rabbit",
    }, // 7
    Emoji {
        symbol: "🐼",
        name: "Panda",
    }, // 8
    Emoji {
        symbol: "🐓",
        name: "Rooster",
    }, // 9
    Emoji {
        symbol: "🐧",
        name: "Penguin",
    }, // 10
    Emoji {
        symbol: "🐢",
        name: "Turtle",
    }, // 11
    Emoji {
        symbol: "🐟",
        name: "Fish",
    }, // 12
    Emoji {
        symbol: "🐙",
        name: "Octopus",
    }, // 13
    Emoji {
        symbol: "🦋",
        name: "Butterfly",
    }, // 14
    Emoji {
        symbol: "🌷",
        name: "Flower",
    }, // 15
    Emoji {
        symbol: "🌳",
        name: "Tree",
    }, // 16
    Emoji {
        symbol: "🌵",
        name: "Cactus",
    }, // 17
    Emoji {
        symbol: "🍄",
        name: "Mushroom",
    }, // 18
    Emoji {
        symbol: "🌏",
        name: "Globe",
    }, // 19
    Emoji {
        symbol: "🌙",
        name: "Moon",
    }, // 20
    Emoji {
        symbol: "☁️",
        name: "Cloud",
    }, // 21
    Emoji {
        symbol: "🔥",
        name: "Fire",
    }, // 22
    Emoji {
        symbol: "🍌",
        name: "Banana",
    }, // 23
    Emoji {
        symbol: "🍎",
        name: "Apple",
    }, // 24
    Emoji {
        symbol: "🍓",
        name: "Strawberry",
    }, // 25
    Emoji {
        symbol: "🌽",
        name: "Corn",
    }, // 26
    Emoji {
        symbol: "🍕",
        name: "Pizza",
    }, // 27
    Emoji {
        symbol: "🎂",
        name: "Cake",
    }, // 28
    Emoji {
        symbol: "❤️",
        name: "Heart",
    }, // 29
    Emoji {
        symbol: "😀",
        name: "Smiley",
    }, // 30
    Emoji {
        symbol: "🤖",
        name: "Robot",
    }, // 31
    Emoji {
        symbol: "🎩",
        name: "Hat",
    }, // 32
    Emoji {
        symbol: "👓",
        name: "Glasses",
    }, // 33
    Emoji {
        symbol: "🔧",
        name: "Spanner",
    }, // 34
    Emoji {
        symbol: "🎅",
        name: "Santa",
    }, // 35
    Emoji {
        symbol: "👍",
        name: "Thumbs Up",
    }, // 36
    Emoji {
        symbol: "☂️",
        name: "Umbrella",
    }, // 37
    Emoji {
        symbol: "⌛",
        name: "Hourglass",
    }, // 38
    Emoji {
        symbol: "⏰",
        name: "Clock",
    }, // 39
    Emoji {
        symbol: "🎁",
        name: "Gift",
    }, // 40
    Emoji {
        symbol: "💡",
        name: "Light Bulb",
    }, // 41
    Emoji {
        symbol: "📕",
        name: "Book",
    }, // 42
    Emoji {
        symbol: "✏️",
        name: "Pencil",
    }, // 43
    Emoji {
        symbol: "📎",
        name: "Paperclip",
    }, // 44
    Emoji {
        symbol: "✂️",
        name: "Scissors",
    }, // 45
    Emoji {
        symbol: "🔒",
        name: "Lock",
    }, // 46
    Emoji {
        symbol: "🔑",
        name: "Key",
    }, // 47
    Emoji {
        symbol: "🔨",
        name: "Hammer",
    }, // 48
    Emoji {
        symbol: "☎️",
        name: "Telephone",
    }, // 49
    Emoji {
        symbol: "🏁",
        name: "Flag",
    }, // 50
    Emoji {
        symbol: "🚂",
        name: "Train",
    }, // 51
    Emoji {
        symbol: "🚲",
        name: "Bicycle",
    }, // 52
    Emoji {
        symbol: "✈️",
        name: "Aeroplane",
    }, // 53
    Emoji {
        symbol: "🚀",
        name: "Rocket",
    }, // 54
    Emoji {
        symbol: "🏆",
        name: "Trophy",
    }, // 55
    Emoji {
        symbol: "⚽",
        name: "Ball",
    }, // 56
    Emoji {
        symbol: "🎸",
        name: "Guitar",
    }, // 57
    Emoji {
        symbol: "🎺",
        name: "Trumpet",
    }, // 58
    Emoji {
        symbol: "🔔",
        name: "Bell",
    }, // 59
    Emoji {
        symbol: "⚓",
        name: "Anchor",
    }, // 60
    Emoji {
        symbol: "🎧",
        name: "Headphones",
    }, // 61
    Emoji {
        symbol: "📁",
        name: "Folder",
    }, // 62
    Emoji {
        symbol: "📌",
        name: "Pin",
    }, // 63
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_whole() {
        let mut names: Vec<_> = EMOJI.iter().map(|e| e.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 64);
        assert_eq!(EMOJI[0].name, "Dog");
        assert_eq!(EMOJI[63].name, "Pin");
    }
}
