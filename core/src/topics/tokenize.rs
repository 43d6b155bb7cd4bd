//! Text → terms: the one tokeniser the classifier, its training and the site rules share.
//!
//! - Unicode-aware: words are runs of alphanumeric characters (`char::is_alphanumeric`), case
//!   folded with `char::to_lowercase`; apostrophes inside a word vanish (`don't` → `dont`).
//! - Latin letters lose their accents (`café`, `cafe` + U+0301 and `cafe` are one word;
//!   `fold_accent`), and so do Greek letters (`ά` is `α`) and the Cyrillic `ё`; a Cyrillic
//!   letter of its own written as a letter and a mark (`и` + U+0306) is that letter (`й`).
//!   Latin-script words get light stemming ([`stem`]): plurals, `-ing`, `-ed`. Words shorter
//!   than two characters, numbers and stop words are dropped.
//! - Chinese, Japanese and Korean text has no spaces: a run of CJK characters becomes its
//!   characters and its character bigrams (`学習` → `学`, `学習`, `習`). Half-width kana are
//!   read as their full-width selves (`ｶﾞｲﾄﾞ` is `ガイド`).
//! - Bounded: a caller gives the most terms it wants; the walk stops there.
//!
//! ```
//! use portrait_core::topics::tokenize::terms;
//! let mut out = Vec::new();
//! terms("Running shoes for the 2026 marathons — 東京", 100, &mut out);
//! assert_eq!(out, ["run", "shoe", "marathon", "東", "東京", "京"]);
//! ```

/// The longest word kept, in characters: longer runs are ids, hashes or URLs glued together.
const MAX_WORD_CHARS: usize = 24;

/// Appends the terms of `text` to `out`, at most `limit` of them in total (counting what
/// `out` already holds).
pub fn terms(text: &str, limit: usize, out: &mut Vec<String>) {
    let mut word = String::new();
    let mut cjk_run: Vec<char> = Vec::new();
    for c in text.chars().map(narrow).chain(std::iter::once(' ')) {
        if out.len() >= limit {
            return;
        }
        if is_cjk(c) {
            finish_word(&mut word, out);
            // A voicing mark joins the kana before it (`ｶﾞ`, read `カ゛`, is `ガ`).
            match cjk_run.last_mut().and_then(|kana| voiced(*kana, c).map(|v| (kana, v))) {
                Some((kana, voiced)) => *kana = voiced,
                None => cjk_run.push(c),
            }
            continue;
        }
        finish_cjk_run(&mut cjk_run, limit, out);
        if c.is_alphanumeric() {
            // `İ` lower-cases to `i` and a combining dot; a final `ς` is the `σ` of `Σ`.
            word.extend(c.to_lowercase().filter(|c| !is_combining_mark(*c)).map(|c| match c {
                'ς' => 'σ',
                c => fold_accent(c),
            }));
        } else if is_combining_mark(c) {
            // A decomposed accent (`e` + U+0301): dropped, the word goes on; unless it makes a
            // letter of its own with the one before (`и` + U+0306).
            if let Some(letter) = word.pop().map(|letter| compose_cyrillic(letter, c)) {
                word.push(letter);
            }
        } else if is_mark_in_word(c) && !word.is_empty() {
            word.push(c);
        } else if !matches!(c, '\'' | '’') {
            finish_word(&mut word, out);
        }
    }
}

/// Full-width Latin letters, digits and punctuation (`ＦＯＯＴＢＡＬＬ`, typed in Chinese and
/// Japanese text) as their ASCII selves, and half-width katakana and voicing marks as their
/// full-width selves: each character in the width the rest of its script is written in.
fn narrow(c: char) -> char {
    const KANA: &str = "ヲァィゥェォャュョッーアイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワン゛゜";
    match c as u32 {
        n @ 0xFF01..=0xFF5E => char::from_u32(n - 0xFEE0).unwrap_or(c),
        n @ 0xFF66..=0xFF9F => KANA.chars().nth(n as usize - 0xFF66).unwrap_or(c),
        _ => c,
    }
}

/// A lower-case letter of Latin-1 or Latin Extended-A without its accent (`é` → `e`, `ł` →
/// `l`), as a decomposed accent is dropped ([`is_combining_mark`]): the two spellings of a
/// word are one, and so is the spelling without accents, often typed. Letters that are no
/// accented other letter stay (`ß`, `æ`, `œ`, `ð`, `þ`, `ĳ`). So do Greek vowels with tonos
/// or dialytika (`ά` → `α`, `ΐ` → `ι`), which Greek typed in capitals or in a hurry lacks, and
/// the Cyrillic `ё` (`е`), which Russian print mostly writes so; not the Cyrillic letters of
/// their own (`й`, `ї`, `ў`).
fn fold_accent(c: char) -> char {
    // From U+00E0 and from U+0100, a letter for each code point; `·` for none.
    const LATIN_1: &str = "aaaaaaæceeeeiiiiðnooooo·ouuuuyþy";
    const EXTENDED_A: &str = concat!(
        "aaaaaaccccccccddddeeeeeeeeeegggggggghhhhiiiiiiiiiiĳĳjjkkk",
        "llllllllllnnnnnnnnnooooooœœrrrrrrssssssssttttttuuuuuuuuuuuuwwyyyzzzzzzs"
    );
    // From U+03AC (`ά`) to U+03CE (`ώ`).
    const GREEK: &str = "αεηιυαβγδεζηθικλμνξοπρςστυφχψωιυουω";
    let folded = match c as u32 {
        n @ 0xE0..=0xFF => LATIN_1.chars().nth(n as usize - 0xE0),
        n @ 0x100..=0x17F => EXTENDED_A.chars().nth(n as usize - 0x100),
        0x390 => Some('ι'),
        n @ 0x3AC..=0x3CE => GREEK.chars().nth(n as usize - 0x3AC),
        0x451 => Some('е'),
        _ => None,
    };
    folded.filter(|f| *f != '·').unwrap_or(c)
}

/// The Cyrillic letter `letter` and the combining `mark` after it make, where they make one
/// that is a letter of its own (`и` + breve = `й`, `у` + breve = `ў`, `і` + diaeresis = `ї`);
/// else `letter` (the mark is an accent, dropped as [`fold_accent`] drops it).
fn compose_cyrillic(letter: char, mark: char) -> char {
    match (letter, mark) {
        ('и', '\u{0306}') => 'й',
        ('у', '\u{0306}') => 'ў',
        ('і', '\u{0308}') => 'ї',
        _ => letter,
    }
}

/// `kana` with the voicing `mark` (`゛` U+309B, `゜` U+309C, as [`narrow`] reads the
/// half-width ones) after it, when the two make one kana (`カ` + `゛` = `ガ`, `ハ` + `゜` =
/// `パ`, `ウ` + `゛` = `ヴ`).
fn voiced(kana: char, mark: char) -> Option<char> {
    let k = kana as u32;
    // カ to チ (odd code points), ツ, テ, ト; ハ to ホ (every third).
    let voiceable = matches!(k, 0x30AB..=0x30C1 if k % 2 == 1) || matches!(k, 0x30C4 | 0x30C6 | 0x30C8);
    let h_row = (0x30CF..=0x30DB).contains(&k) && (k - 0x30CF).is_multiple_of(3);
    let offset = match mark {
        '゛' if k == 0x30A6 => 0x30F4 - 0x30A6,
        '゛' if voiceable || h_row => 1,
        '゜' if h_row => 2,
        _ => return None,
    };
    char::from_u32(k + offset)
}

/// The combining diacritical marks (U+0300–U+036F) of Latin, Greek and Cyrillic text, which
/// decomposed text puts after the letter.
fn is_combining_mark(c: char) -> bool {
    ('\u{0300}'..='\u{036F}').contains(&c)
}

/// Signs inside a word that are not letters: the Indic scripts' viramas, nuktas and stress
/// signs (`हिन्दी`); their other signs are letters already.
fn is_mark_in_word(c: char) -> bool {
    const VIRAMAS_AND_NUKTAS: &[char] = &[
        '\u{093C}', '\u{094D}', '\u{09BC}', '\u{09CD}', '\u{0A3C}', '\u{0A4D}', '\u{0ABC}', '\u{0ACD}',
        '\u{0B3C}', '\u{0B4D}', '\u{0BCD}', '\u{0C3C}', '\u{0C4D}', '\u{0CBC}', '\u{0CCD}', '\u{0D3B}',
        '\u{0D3C}', '\u{0D4D}', '\u{0DCA}',
    ];
    VIRAMAS_AND_NUKTAS.contains(&c) || ('\u{0951}'..='\u{0954}').contains(&c)
}

fn finish_word(word: &mut String, out: &mut Vec<String>) {
    let chars = word.chars().count();
    let keep = (2..=MAX_WORD_CHARS).contains(&chars)
        && !word.chars().all(|c| c.is_numeric())
        && !STOP_WORDS.contains(&word.as_str());
    if keep {
        out.push(stem(word));
    }
    word.clear();
}

/// A CJK run: each character, and each pair of neighbours (most words are one or two
/// characters; a pair is the better evidence, a single character still counts).
fn finish_cjk_run(run: &mut Vec<char>, limit: usize, out: &mut Vec<String>) {
    for (i, &c) in run.iter().enumerate() {
        if out.len() >= limit {
            break;
        }
        out.push(c.to_string());
        if let Some(&next) = run.get(i + 1).filter(|_| out.len() < limit) {
            out.push([c, next].iter().collect());
        }
    }
    run.clear();
}

/// Han (CJK unified ideographs, extensions A to I, compatibility, `々` `〆` `〇`), kana (half-width
/// too) and Hangul syllables; not the katakana block's punctuation (`・` between the words of
/// a foreign name, `゠`), which separates words as a space does.
fn is_cjk(c: char) -> bool {
    matches!(c,
        '\u{3005}'..='\u{3007}' | '\u{3040}'..='\u{309F}' | '\u{30A1}'..='\u{30FA}' | '\u{30FC}'..='\u{30FF}'
        | '\u{31F0}'..='\u{31FF}'
        | '\u{3400}'..='\u{4DBF}' | '\u{4E00}'..='\u{9FFF}' | '\u{F900}'..='\u{FAFF}'
        | '\u{AC00}'..='\u{D7AF}' | '\u{FF66}'..='\u{FF9F}' | '\u{20000}'..='\u{323AF}')
}

/// Light stemming for lower-case Latin words: enough to fold `games`/`game`, `running`/`run`,
/// `studies`/`study`, `movies`/`movie`, `booked`/`book`; not a full Porter stemmer (which
/// would cost bytes and mangle names). Words under four bytes, and words with letters
/// outside the Latin script, are kept as they are.
pub fn stem(word: &str) -> String {
    if word.len() < 4 || !word.chars().all(is_latin) {
        return word.to_owned();
    }
    let (base, silent_e) = strip_suffix(word);
    // `study`, `studies`, `movie` and `movies` all end in `i`.
    let ends_in_consonant_y = base.len() >= 4
        && base.ends_with('y')
        && !base[..base.len() - 1].ends_with(['a', 'e', 'i', 'o', 'u']);
    match base.strip_suffix("ie").or(ends_in_consonant_y.then(|| &base[..base.len() - 1])) {
        Some(stem) => format!("{stem}i"),
        None if silent_e => format!("{base}e"),
        None => base.to_owned(),
    }
}

/// The word without its suffix, and whether the stem lost a silent `e` with it (`coding` →
/// `code`, `priced` → `price`).
fn strip_suffix(word: &str) -> (&str, bool) {
    if let Some(base) = word.strip_suffix("ing").filter(|b| b.len() >= 3) {
        return before_ing_or_ed(word, base);
    }
    if let Some(base) = word.strip_suffix("ies").or_else(|| word.strip_suffix("ied")) {
        return (&word[..base.len() + 2], false);
    }
    if let Some(base) = word.strip_suffix("ed").filter(|b| b.len() >= 3 && !b.ends_with('e')) {
        return before_ing_or_ed(word, base);
    }
    (strip_plural(word), false)
}

/// What is left of `word` once `-ing` or `-ed` goes, as Porter's step 1b has it: only a stem
/// with a vowel (`string`, `spring` stay); a stem in `-at`, `-bl` or `-iz` had an `e`
/// (`creat-ed` → `create`, `enabl-ed`, `organiz-ing`); `runn` → `run` (not `fall`, `pass`,
/// `buzz`); a short stem ending consonant–vowel–consonant had an `e` (`car-ing` → `care`,
/// `gam-ing` → `game`, `cod-ing` → `code`), but not `w`, `x`, `y` (`show-ing`, `box-ed`,
/// `play-ed`).
fn before_ing_or_ed<'a>(word: &'a str, base: &'a str) -> (&'a str, bool) {
    let vowel = |c: u8| matches!(c, b'a' | b'e' | b'i' | b'o' | b'u');
    let bytes = base.as_bytes();
    if !bytes.iter().any(|&c| vowel(c) || c == b'y') {
        return (word, false);
    }
    // Not `boat-ing`, `heat-ed`, `eat-ing`: those had no `e` (but `creat-ed` had).
    let vowel_at = (base.ends_with("eat") || base.ends_with("oat")) && !base.ends_with("creat");
    if (base.ends_with("at") && !vowel_at) || base.ends_with("bl") || base.ends_with("iz") {
        return (base, true);
    }
    match bytes {
        [.., a, b] if a == b && !vowel(*a) && !matches!(a, b'l' | b's' | b'z') => {
            (&base[..base.len() - 1], false)
        }
        [.., a, b, c] if !vowel(*a) && vowel(*b) && !vowel(*c) && !matches!(c, b'w' | b'x' | b'y') => {
            // One vowel–consonant sequence (Porter's measure 1): `car`, `pric`, not `visit`.
            let measure = bytes.windows(2).filter(|pair| vowel(pair[0]) && !vowel(pair[1])).count();
            (base, measure == 1)
        }
        _ => (base, false),
    }
}

fn strip_plural(word: &str) -> &str {
    if word.ends_with("ss") || word.ends_with("us") || word.ends_with("is") {
        return word;
    }
    let sibilant =
        |b: &&str| b.ends_with(['x', 'z']) || b.ends_with("sh") || b.ends_with("ch") || b.ends_with("ss");
    if let Some(base) = word.strip_suffix("es").filter(sibilant) {
        return base;
    }
    word.strip_suffix('s').unwrap_or(word)
}

/// Latin script: ASCII and the accented letters of Latin-1 and Latin Extended-A/B (`é`, `ñ`,
/// `ß`, `ł`). The suffix rules strip only ASCII letters, so they never cut a character.
fn is_latin(c: char) -> bool {
    c.is_ascii() || ('\u{C0}'..='\u{24F}').contains(&c)
}

/// Function words of the languages our first sites write in; they say nothing about a topic.
const STOP_WORDS: &[&str] = &[
    // English
    "a", "about", "after", "all", "also", "an", "and", "any", "are", "as", "at", "be", "been", "before",
    "but", "by", "can", "could", "did", "do", "does", "for", "from", "get", "had", "has", "have", "he",
    "her", "here", "his", "how", "if", "in", "into", "is", "it", "its", "just", "me", "more", "most", "my",
    "new", "no", "not", "now", "of", "on", "one", "or", "our", "out", "over", "she", "so", "some", "than",
    "that", "the", "their", "them", "then", "there", "these", "they", "this", "those", "to", "up", "us",
    "was", "we", "were", "what", "when", "where", "which", "who", "why", "will", "with", "would", "you",
    "your", "www", "http", "https", "html", "htm", "php", "aspx", "index", "com", "org", "net", "co", "uk",
    // French, German, Spanish
    "de", "des", "du", "et", "la", "le", "les", "un", "une", "pour", "dans", "der", "die", "das", "und",
    "mit", "ein", "eine", "el", "los", "las", "por", "con", "para", "y",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn all(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        terms(text, 1000, &mut out);
        out
    }

    #[test]
    fn latin_words_are_folded_stemmed_and_filtered() {
        assert_eq!(all("The GAMES, the Game: playing & played!"), ["game", "game", "play", "play"]);
        assert_eq!(all("Studies of a study; movies, movie"), ["studi", "studi", "movi", "movi"]);
        assert_eq!(all("Running 2026 x boxes churches classes"), ["run", "box", "church", "class"]);
        assert_eq!(all("don't  Don’t"), ["dont", "dont"]);
        assert_eq!(all("Straße ÉCOLE Ελληνικά"), ["straße", "ecole", "ελληνικα"]);
        assert_eq!(
            all("écoles cafés niños Łódź Œuvres"),
            ["ecole", "cafe", "nino", "lodz", "œuvre"],
            "Latin script beyond ASCII"
        );
        assert_eq!(all("книги Ελληνικές"), ["книги", "ελληνικεσ"], "other scripts are not stemmed");
    }

    #[test]
    fn the_fold_tables_cover_their_ranges() {
        assert_eq!(
            [fold_accent('à'), fold_accent('ÿ'), fold_accent('ā'), fold_accent('ž'), fold_accent('ſ')],
            ['a', 'y', 'a', 'z', 's']
        );
        assert_eq!([fold_accent('ß'), fold_accent('œ'), fold_accent('÷')], ['ß', 'œ', '÷']);
        assert_eq!(
            [
                fold_accent('ά'),
                fold_accent('ΰ'),
                fold_accent('ω'),
                fold_accent('ώ'),
                fold_accent('ϊ'),
                fold_accent('ϐ')
            ],
            ['α', 'υ', 'ω', 'ω', 'ι', 'ϐ']
        );
        assert_eq!([narrow('ｦ'), narrow('ﾝ'), narrow('ﾟ'), narrow('Ａ')], ['ヲ', 'ン', '゜', 'A']);
        let marks = [
            voiced('ツ', '゛'),
            voiced('ホ', '゜'),
            voiced('ッ', '゛'),
            voiced('ア', '゛'),
            voiced('カ', '゜'),
        ];
        assert_eq!(marks, [Some('ヅ'), Some('ポ'), None, None, None]);
    }

    #[test]
    fn width_accents_and_marks_are_folded() {
        assert_eq!(all("ＦＯＯＴＢＡＬＬ ｓｃｏｒｅｓ"), all("football scores"));
        assert_eq!(
            all("Poke\u{301}mon e\u{301}cole Pokémon école pokemon"),
            ["pokemon", "ecole", "pokemon", "ecole", "pokemon"],
            "an accent, decomposed or not, is left out"
        );
        assert_eq!(all("İstanbul ΣΟΦΟΣ σοφος"), ["istanbul", "σοφοσ", "σοφοσ"]);
        // Precomposed and decomposed, Greek and Cyrillic: the accents go, the letters of their
        // own stay (`й`, `ї`, `ў`), whichever way they are written.
        assert_eq!(
            all("αθλητισμός αθλητισμο\u{301}ς ΑΘΛΗΤΙΣΜΟΣ Ϊ́ρις ΐρις"),
            ["αθλητισμοσ", "αθλητισμοσ", "αθλητισμοσ", "ιρισ", "ιρισ"]
        );
        assert_eq!(
            all("мой мои\u{306} ёлка е\u{308}лка елка їжак і\u{308}жак ўсё у\u{306}се\u{308}"),
            ["мой", "мой", "елка", "елка", "елка", "їжак", "їжак", "ўсе", "ўсе"]
        );
        assert_eq!(all("हिन्दी समाचार"), ["हिन्दी", "समाचार"], "a virama is inside the word");
        assert_eq!(all("佐々木"), ["佐", "佐々", "々", "々木", "木"]);
        assert_eq!(
            all("caring coding gaming priced string hopping visiting"),
            ["care", "code", "game", "price", "string", "hop", "visit"]
        );
        assert_eq!(all("created updated enabled organizing"), ["create", "update", "enable", "organize"]);
        assert_eq!(all("boating heated eating treated"), ["boat", "heat", "eat", "treat"]);
        assert_eq!(all("ｶﾞｲﾄﾞ ﾊﾟﾝ ｳﾞｧ ｯﾞ"), all("ガイド パン ヴァ ッ゛"), "half-width kana as full-width");
        assert_eq!(all("カ゛イト゛"), all("ガイド"), "a full-width voicing mark after its kana");
        assert_eq!(all("ｶﾞｲﾄﾞ"), ["ガ", "ガイ", "イ", "イド", "ド"]);
        assert_eq!(all("দাম৳"), ["দাম"], "a currency sign is no mark");
    }

    #[test]
    fn cjk_runs_become_bigrams_and_mix_with_latin() {
        assert_eq!(all("机器学习"), ["机", "机器", "器", "器学", "学", "学习", "习"]);
        assert_eq!(all("東京でAI"), ["東", "東京", "京", "京で", "で", "ai"]);
        assert_eq!(all("ハリー・ポッター"), all("ハリー ポッター"), "the middle dot separates words");
        assert_eq!(all("Rust 中 code"), ["rust", "中", "code"]);
        assert_eq!(all("부동산 투자"), ["부", "부동", "동", "동산", "산", "투", "투자", "자"]);
    }

    #[test]
    fn work_is_bounded() {
        let long = "word ".repeat(10_000) + &"字".repeat(10_000);
        let mut out = Vec::new();
        terms(&long, 50, &mut out);
        assert_eq!(out.len(), 50);
        terms("another one", 50, &mut out);
        assert_eq!(out.len(), 50, "the limit counts what was already there");
        assert!(all(&"x".repeat(25)).is_empty(), "over-long runs are not words");
    }
}
