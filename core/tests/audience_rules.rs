//! The audience rule language: what rules mean (tables of rule, facts, verdict), what a
//! marketer is told when a rule is wrong (tables of text, line, column, message), its limits,
//! and its laws as properties: no text panics the parser, every error points inside the text,
//! and the canonical text of a rule parses back to the same rule.

use portrait_core::audience::{
    Fact, Facts, MAX_DEPTH, MAX_LIST_ITEMS, MAX_RULE_BYTES, MAX_STRING_BYTES, Rule, RuleError,
};
use proptest::prelude::*;
use std::borrow::Cow;
use std::cell::RefCell;

/// Facts from lists, remembering which names were read.
#[derive(Default)]
struct Person {
    values: Vec<(&'static str, Fact<'static>)>,
    interests: Vec<(&'static str, f64)>,
    tags: Vec<(&'static str, f64)>,
    traits: Vec<(&'static str, Fact<'static>)>,
    read: RefCell<Vec<String>>,
}

fn borrowed<'a>(fact: &'a Fact<'static>) -> Fact<'a> {
    match fact {
        Fact::Text(text) => Fact::Text(Cow::Borrowed(text)),
        other => other.clone(),
    }
}

impl Facts for Person {
    fn value(&self, name: &str) -> Fact<'_> {
        self.read.borrow_mut().push(name.to_owned());
        self.values.iter().find(|(n, _)| *n == name).map_or(Fact::Null, |(_, fact)| borrowed(fact))
    }
    fn interest(&self, topic: &str) -> f64 {
        self.interests.iter().find(|(t, _)| *t == topic).map_or(0.0, |(_, score)| *score)
    }
    fn site_tag(&self, tag: &str) -> f64 {
        self.tags.iter().find(|(t, _)| *t == tag).map_or(0.0, |(_, score)| *score)
    }
    fn trait_value(&self, key: &str) -> Fact<'_> {
        self.traits.iter().find(|(k, _)| *k == key).map_or(Fact::Null, |(_, fact)| borrowed(fact))
    }
}

fn text(s: &'static str) -> Fact<'static> {
    Fact::from(s)
}

fn sample() -> Person {
    Person {
        values: vec![
            ("lead_score", Fact::Number(72.0)),
            ("engaged_members_14d", Fact::Number(3.0)),
            ("negative", Fact::Number(-3.5)),
            ("visits", Fact::Number(0.0)),
            ("nan_score", Fact::Number(f64::NAN)),
            ("country", text("DE")),
            ("lifecycle", text("lead")),
            ("signup_day", text("2026-03-01")),
            ("empty_text", text("")),
            ("active_7d", Fact::Bool(true)),
            ("churned", Fact::Bool(false)),
            ("null_field", Fact::Null),
        ],
        interests: vec![("/Computers & Electronics", 0.5), ("Sports", 0.1), ("/Weird", f64::NAN)],
        tags: vec![("intent:pricing", 1.0)],
        traits: vec![("plan", text("pro")), ("seats", Fact::Number(12.0)), ("trial", Fact::Bool(true))],
        read: RefCell::default(),
    }
}

fn check(cases: &[(&str, bool)]) {
    let person = sample();
    for &(rule, expected) in cases {
        let parsed = Rule::parse(rule).unwrap_or_else(|e| panic!("{rule}: {e}"));
        assert_eq!(parsed.eval(&person), expected, "{rule}");
    }
}

#[test]
fn numbers_compare_numerically() {
    check(&[
        ("lead_score >= 60", true),
        ("lead_score >= 72", true),
        ("lead_score > 72", false),
        ("lead_score > 71.5", true),
        ("lead_score < 72", false),
        ("lead_score < 73", true),
        ("lead_score <= 72", true),
        ("lead_score <= 71", false),
        ("lead_score == 72", true),
        ("lead_score == 72.0", true),
        ("lead_score == 7.2e1", true),
        ("lead_score == 720E-1", true),
        ("lead_score == 71", false),
        ("lead_score != 72", false),
        ("lead_score != 71", true),
        ("negative < -3", true),
        ("negative == -3.5", true),
        ("60 <= lead_score", true),
        ("-0 == 0", true),
        ("engaged_members_14d >= 3", true),
        ("engaged_members_14d >= 4", false),
    ]);
}

#[test]
fn texts_compare_exactly_and_order_by_code_point() {
    check(&[
        ("country == \"DE\"", true),
        ("country == \"de\"", false),
        ("country == \"DE \"", false),
        ("country != \"FR\"", true),
        ("country != \"DE\"", false),
        ("country < \"FR\"", true),
        ("country <= \"DE\"", true),
        ("country > \"FR\"", false),
        ("country >= \"DE\"", true),
        ("signup_day >= \"2026-01-01\"", true),
        ("signup_day < \"2026-03-01\"", false),
        ("signup_day <= \"2026-03-01\"", true),
        ("empty_text == \"\"", true),
        ("\"b\" > \"a\"", true),
        ("\"Z\" < \"a\"", true),
        ("\"é\" == \"\\u{e9}\"", true),
        ("\"a\\\"b\" == \"a\\u{22}b\"", true),
    ]);
}

#[test]
fn booleans_and_null_only_have_equality() {
    check(&[
        ("active_7d == true", true),
        ("active_7d != false", true),
        ("churned == false", true),
        ("churned == true", false),
        ("active_7d > false", false),
        ("active_7d >= true", false),
        ("churned < true", false),
        ("null == null", true),
        ("null != null", false),
        ("null <= null", false),
        ("null_field == null", true),
    ]);
}

#[test]
fn missing_values_are_null() {
    check(&[
        ("unknown == null", true),
        ("unknown != null", false),
        ("lead_score == null", false),
        ("lead_score != null", true),
        ("unknown == 0", false),
        ("unknown != 1", true),
        ("unknown < 1", false),
        ("unknown >= 0", false),
        ("unknown == \"\"", false),
        ("unknown", false),
        ("not unknown", true),
        ("trait(\"missing\") == null", true),
        ("trait(\"missing\") != \"pro\"", true),
        ("interest(\"/Unknown\") == 0", true),
        ("interest(\"/Unknown\") == null", false),
    ]);
}

#[test]
fn mixed_types_are_never_equal_nor_ordered() {
    check(&[
        ("lead_score == \"72\"", false),
        ("lead_score != \"72\"", true),
        ("lead_score < \"80\"", false),
        ("lead_score >= \"0\"", false),
        ("country > 1", false),
        ("country <= 1", false),
        ("active_7d == 1", false),
        ("visits == false", false),
        ("country == true", false),
        ("country != true", true),
        ("\"1\" == 1", false),
    ]);
}

#[test]
fn nan_equals_nothing_and_orders_with_nothing() {
    check(&[
        ("nan_score == nan_score", false),
        ("nan_score != nan_score", true),
        ("nan_score == 1", false),
        ("nan_score != 1", true),
        ("nan_score < 1", false),
        ("nan_score <= 1", false),
        ("nan_score > -1", false),
        ("nan_score >= -1", false),
        ("nan_score == null", false),
        ("nan_score", false),
        ("nan_score in [1, null]", false),
        ("nan_score not in [1]", true),
        ("interest(\"/Weird\") > 0", false),
        ("interest(\"/Weird\") <= 0", false),
        ("interest(\"/Weird\")", false),
    ]);
}

#[test]
fn an_operand_alone_holds_when_true_or_non_zero() {
    check(&[
        ("active_7d", true),
        ("churned", false),
        ("visits", false),
        ("lead_score", true),
        ("negative", true),
        ("country", false),
        ("empty_text", false),
        ("null_field", false),
        ("true", true),
        ("false", false),
        ("1", true),
        ("0", false),
        ("-0.0", false),
        ("\"x\"", false),
        ("null", false),
        ("trait(\"trial\")", true),
        ("trait(\"plan\")", false),
    ]);
}

#[test]
fn in_and_not_in() {
    check(&[
        ("country in [\"DE\", \"FR\"]", true),
        ("country in [\"FR\", \"IT\"]", false),
        ("country in [\"de\"]", false),
        ("country not in [\"FR\"]", true),
        ("country not in [\"DE\", \"FR\"]", false),
        ("country in []", false),
        ("country not in []", true),
        ("lead_score in [1, 72, \"x\"]", true),
        ("lead_score in [\"72\"]", false),
        ("lead_score in [72.0]", true),
        ("unknown in [null]", true),
        ("unknown not in [null]", false),
        ("unknown in [0, \"\", false]", false),
        ("active_7d in [true]", true),
        ("active_7d in [1]", false),
        ("trait(\"plan\") in [\"pro\", \"team\",]", true),
        ("interest(\"Sports\") in [0.1]", true),
        ("\"DE\" in [\"DE\"]", true),
        ("not country in [\"DE\"]", false),
        ("country in\n[\n  \"FR\",\n  \"DE\",\n]", true),
    ]);
}

#[test]
fn functions_read_interests_site_tags_and_traits() {
    check(&[
        ("interest(\"/Computers & Electronics\") > 0.3", true),
        ("interest(\"Sports\") > 0.3", false),
        ("interest(\"Sports\")", true),
        ("interest(\"/Unknown\")", false),
        ("interest(\"/Computers & Electronics\") > interest(\"Sports\")", true),
        ("site_tag(\"intent:pricing\") >= 1", true),
        ("site_tag(\"intent:demo\") > 0", false),
        ("site_tag(\"intent:pricing\")", true),
        ("trait(\"plan\") == \"pro\"", true),
        ("trait(\"seats\") >= 10", true),
        ("trait(\"trial\") == true", true),
        ("interest (\"Sports\") > 0", true),
    ]);
}

#[test]
fn not_binds_tighter_than_and_which_binds_tighter_than_or() {
    check(&[
        ("not lifecycle == \"customer\"", true),
        ("not lifecycle == \"lead\"", false),
        ("churned or active_7d", true),
        ("churned and active_7d", false),
        ("not churned and active_7d", true),
        ("not (churned or active_7d)", false),
        // or over and: churned or (active_7d and visits)
        ("churned or active_7d and visits", false),
        // (churned and visits) or active_7d
        ("churned and visits or active_7d", true),
        // (not active_7d) or active_7d
        ("not active_7d or active_7d", true),
        ("not not active_7d", true),
        ("not not not active_7d", false),
        ("(((active_7d)))", true),
        ("(churned or active_7d) and visits", false),
        ("churned or (active_7d and lead_score > 1)", true),
    ]);
    // `not a or b and c` is `(not a) or (b and c)`, for every a, b, c.
    let rule = Rule::parse("not a or b and c").unwrap();
    for bits in 0..8u8 {
        let (a, b, c) = (bits & 1 != 0, bits & 2 != 0, bits & 4 != 0);
        let person = Person {
            values: vec![("a", Fact::Bool(a)), ("b", Fact::Bool(b)), ("c", Fact::Bool(c))],
            ..Person::default()
        };
        assert_eq!(rule.eval(&person), !a || (b && c), "a={a} b={b} c={c}");
    }
}

#[test]
fn the_examples_of_the_brief() {
    check(&[
        (
            "lead_score >= 60 and interest(\"/Computers & Electronics\") > 0.3 \
             and country in [\"DE\", \"FR\"] and not lifecycle == \"customer\"",
            true,
        ),
        (
            "lead_score >= 60\n  and interest(\"/Computers & Electronics\") > 0.3\n  \
             and country in [\"DE\", \"FR\"]\n  and not lifecycle == \"lead\"",
            false,
        ),
        ("engaged_members_14d >= 3", true),
    ]);
}

#[test]
fn and_and_or_stop_at_the_deciding_operand() {
    let person = sample();
    assert!(!Rule::parse("churned and never_read").unwrap().eval(&person));
    assert!(Rule::parse("active_7d or never_read").unwrap().eval(&person));
    assert_eq!(*person.read.borrow(), ["churned", "active_7d"]);
}

#[test]
fn names_are_listed_where_they_are_written() {
    let rule = Rule::parse(
        "lead_score >= 60\nand (country in [\"DE\"] or interest(\"/x\") > 0)\n  and not lead_score == trait(\"x\")",
    )
    .unwrap();
    let names: Vec<_> = rule.names().iter().map(|n| (n.name.as_str(), n.line, n.column)).collect();
    assert_eq!(names, [("lead_score", 1, 1), ("country", 2, 6), ("lead_score", 3, 11)]);
    // Columns count characters, not bytes.
    let rule = Rule::parse("\"ééé\" == x").unwrap();
    assert_eq!((rule.names()[0].line, rule.names()[0].column), (1, 10));
}

/// (rule text, line, column, a fragment of the message).
const ERRORS: &[(&str, usize, usize, &str)] = &[
    (
        "lead_score = 60",
        1,
        12,
        "expected a comparison operator or \"and\"/\"or\" after lead_score, found \"=\" (did you mean \"==\"?)",
    ),
    ("foo(\"x\") > 1", 1, 1, "unknown function foo (expected interest, site_tag or trait)"),
    ("country == \"DE", 1, 12, "unterminated string"),
    ("not (a and b", 1, 13, "unexpected end of rule: expected \")\" to close the \"(\" at line 1, column 5"),
    ("(a", 1, 3, "expected \")\" to close the \"(\" at line 1, column 1"),
    ("", 1, 1, "empty rule"),
    ("  \n\t ", 1, 1, "empty rule"),
    ("lead_score >=", 1, 14, "unexpected end of rule: expected a name or a value after \">=\""),
    ("lead_score >= and", 1, 15, "expected a name or a value after \">=\", found \"and\""),
    ("a == 1 b", 1, 8, "expected \"and\" or \"or\" after 1, found \"b\""),
    ("(a == 1 b)", 1, 9, "expected \"and\", \"or\" or \")\" after 1, found \"b\""),
    ("(a b)", 1, 4, "expected a comparison operator, \"and\"/\"or\" or \")\" after a, found \"b\""),
    ("a == b == c", 1, 8, "expected \"and\" or \"or\" after b, found \"==\""),
    ("(a == 1) b", 1, 10, "expected \"and\" or \"or\" after \")\", found \"b\""),
    ("a )", 1, 3, "unmatched \")\""),
    ("a == 1)", 1, 7, "unmatched \")\""),
    (
        "a and and b",
        1,
        7,
        "expected a condition (a name, a value, \"not\" or \"(\") after \"and\", found \"and\"",
    ),
    ("and a", 1, 1, "expected a condition (a name, a value, \"not\" or \"(\"), found \"and\""),
    ("a or", 1, 5, "unexpected end of rule: expected a condition"),
    ("not", 1, 4, "unexpected end of rule: expected a condition"),
    ("()", 1, 2, "expected a condition (a name, a value, \"not\" or \"(\") after \"(\", found \")\""),
    ("x in (\"DE\")", 1, 6, "expected a list such as [\"DE\", \"FR\"] after \"in\", found \"(\""),
    ("x in", 1, 5, "unexpected end of rule: expected a list such as"),
    ("x in [\"DE\" \"FR\"]", 1, 12, "expected \",\" or \"]\" after \"DE\", found \"FR\""),
    ("x in [a]", 1, 7, "lists hold only numbers, strings, true, false and null"),
    ("x in [1,,2]", 1, 9, "expected a value or \"]\", found \",\""),
    ("x in [1, 2", 1, 11, "unexpected end of rule: expected \"]\" to close the \"[\" at line 1, column 6"),
    ("x in [1,", 1, 9, "expected \"]\" to close the \"[\" at line 1, column 6"),
    ("x not [1]", 1, 7, "expected \"in\" after \"not\""),
    ("x not", 1, 6, "unexpected end of rule: expected \"in\" after \"not\""),
    ("interest > 0.3", 1, 1, "interest is a function: write interest(\"…\")"),
    ("trait == 1", 1, 1, "trait is a function"),
    (
        "interest(sports) > 0",
        1,
        10,
        "expected a quoted argument, as in interest(\"/Sports\"), found \"sports\"",
    ),
    ("site_tag() > 0", 1, 10, "as in site_tag(\"intent:pricing\"), found \")\""),
    ("interest(\"a\", \"b\")", 1, 13, "expected \")\" after the argument of interest: it takes one string"),
    ("trait(\"a\"", 1, 10, "unexpected end of rule: expected \")\" after the argument of trait"),
    ("country == 'DE'", 1, 12, "found \"'\" (strings use straight double quotes: \"DE\")"),
    ("country == \u{201c}DE\u{201d}", 1, 12, "strings use straight double quotes"),
    ("a && b", 1, 3, "found \"&&\" (use \"and\")"),
    ("a || b", 1, 3, "found \"||\" (use \"or\")"),
    ("!a", 1, 1, "found \"!\" (use \"not\" to negate a condition)"),
    ("a => 1", 1, 3, "(did you mean \">=\"?)"),
    ("a =< 1", 1, 3, "(did you mean \"<=\"?)"),
    ("a <> 1", 1, 3, "found \"<>\" (use \"!=\" for \"not equal\")"),
    ("a AND b", 1, 3, "keywords are lowercase: write \"and\", not \"AND\""),
    ("NOT a", 1, 1, "write \"not\""),
    ("a == True", 1, 6, "write \"true\""),
    ("Lead_Score > 1", 1, 1, "names are lowercase (a-z, 0-9 and _): found \"Lead_Score\""),
    ("a == 07", 1, 6, "numbers have no leading zeros: write 7, not 07"),
    ("a == -0012.5", 1, 6, "numbers have no leading zeros: write -12, not -0012"),
    ("a == 00", 1, 6, "write 0, not 00"),
    ("a == 1.", 1, 6, "expected digits after the decimal point"),
    ("a == .5", 1, 6, "write a digit before the point: 0.5"),
    ("a == 1e999", 1, 6, "the number 1e999 is out of range"),
    ("a == -1e999", 1, 6, "out of range"),
    ("a == 14d", 1, 6, "\"14d\" is neither a number nor a name"),
    ("a == 1.5.3", 1, 6, "\"1.5.3\" is neither a number nor a name"),
    ("14d_engaged >= 3", 1, 1, "\"14d_engaged\" is neither a number nor a name"),
    ("a == - 1", 1, 6, "found \"-\""),
    ("a == @", 1, 6, "expected a name or a value after \"==\", found \"@\""),
    ("a @", 1, 3, "after a, found \"@\""),
    (
        "interest(\"x\") b",
        1,
        15,
        "expected a comparison operator or \"and\"/\"or\" after interest(\"x\"), found \"b\"",
    ),
    ("a > interest(\"x\") b", 1, 19, "expected \"and\" or \"or\" after interest(\"x\"), found \"b\""),
    ("x in [1] b", 1, 10, "expected \"and\" or \"or\" after \"]\", found \"b\""),
    ("s == \"\\q\"", 1, 7, "unknown escape \\q: the escapes are \\\", \\\\, \\n, \\t and \\u{…}"),
    ("s == \"\\u{110000}\"", 1, 7, "\\u{110000} is not a Unicode character"),
    ("s == \"\\u{d800}\"", 1, 7, "is not a Unicode character"),
    ("s == \"\\u00e9\"", 1, 7, "write a \\u escape as \\u{…} with 1 to 6 hex digits"),
    ("s == \"\\u{1234567}\"", 1, 7, "1 to 6 hex digits"),
    ("s == \"\\u{}\"", 1, 7, "1 to 6 hex digits"),
    ("s == \"a\u{1}b\"", 1, 8, "a control character in a string: write it as \\u{1}"),
    ("s == \"a\\", 1, 8, "a backslash must start an escape"),
    ("a == \"éé\" and b = 1", 1, 17, "after b, found \"=\""),
    ("a ==\n\n", 1, 5, "unexpected end of rule"),
    // Rules over several lines (TOML multi-line strings).
    (
        "lead_score >= 60\nand (country == \"DE\"\n     or country == \"FR\"\n",
        3,
        24,
        "unexpected end of rule: expected \")\" to close the \"(\" at line 2, column 5",
    ),
    ("lead_score >= 60 and\n  country = \"DE\"", 2, 11, "after country, found \"=\" (did you mean \"==\"?)"),
    ("a == 1 and\n  b == \"x\n  and c", 2, 8, "unterminated string"),
    ("a == 1 and\r\n  b == \"x\r\n  and c", 2, 8, "unterminated string"),
    ("a\nand\n\tfoo(\"x\")", 3, 2, "unknown function foo"),
    (
        "country in [\n  \"DE\",\n  \"FR\"\n  \"IT\"\n]",
        4,
        3,
        "expected \",\" or \"]\" after \"FR\", found \"IT\"",
    ),
    ("a in [\n  1,\n  2,\n", 3, 5, "expected \"]\" to close the \"[\" at line 1, column 6"),
];

#[test]
fn errors_say_where_and_what() {
    for &(text, line, column, fragment) in ERRORS {
        let error = Rule::parse(text).expect_err(text);
        assert_eq!((error.line, error.column), (line, column), "{text:?}: {error}");
        assert!(error.message.contains(fragment), "{text:?}: {error}\n  wanted: {fragment}");
    }
    let error = Rule::parse("lead_score = 60").unwrap_err();
    assert_eq!(
        error.to_string(),
        "line 1, column 12: expected a comparison operator or \"and\"/\"or\" after lead_score, \
         found \"=\" (did you mean \"==\"?)"
    );
}

/// Found by `cargo fuzz run audience_rule`: a rule within the limit whose canonical text (with
/// the spaces and parentheses printing adds) is over it. It parses; its printed form is refused
/// as too long, with a located error, rather than being cut or accepted.
#[test]
fn a_rule_whose_canonical_text_outgrows_the_limit() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/seeds/audience_rule/long-canonical-text.txt");
    let text = std::fs::read_to_string(path).expect("the fuzz seed is in the repository");
    assert!(text.len() <= MAX_RULE_BYTES);
    let printed = Rule::parse(&text).expect("the rule parses").to_string();
    assert!(printed.len() > MAX_RULE_BYTES, "{} bytes printed", printed.len());
    assert!(Rule::parse(&printed).unwrap_err().message.contains("too long"));
}

#[test]
fn limits_are_typed_and_located() {
    // Text: 4,096 bytes, counted in bytes, located at the character that crosses the limit.
    let longest = format!("a{}", " ".repeat(MAX_RULE_BYTES - 1));
    assert!(Rule::parse(&longest).is_ok());
    let error = Rule::parse(&format!("{longest} ")).unwrap_err();
    assert_eq!((error.line, error.column), (1, MAX_RULE_BYTES + 1));
    assert!(error.message.contains("too long: 4097 bytes (at most 4096)"), "{error}");
    let multi_line = format!("a or\n{}", "é".repeat(MAX_RULE_BYTES));
    let error = Rule::parse(&multi_line).unwrap_err();
    assert_eq!((error.line, error.column), (2, (MAX_RULE_BYTES - 5) / 2 + 1));
    assert!(Rule::parse(&"(".repeat(100_000)).unwrap_err().message.contains("too long"));

    // Depth: 32 levels of parentheses and `not`, together.
    let deepest = format!("{}a{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
    assert!(Rule::parse(&deepest).is_ok());
    let too_deep = format!("{}a{}", "(".repeat(MAX_DEPTH + 1), ")".repeat(MAX_DEPTH + 1));
    let error = Rule::parse(&too_deep).unwrap_err();
    assert_eq!((error.line, error.column), (1, MAX_DEPTH + 1));
    assert!(error.message.contains("nests too deeply: at most 32 levels"), "{error}");
    let mixed = format!("{}a{}", "not (".repeat(MAX_DEPTH / 2), ")".repeat(MAX_DEPTH / 2));
    assert!(Rule::parse(&mixed).is_ok());
    let mixed = format!("{}not a{}", "not (".repeat(MAX_DEPTH / 2), ")".repeat(MAX_DEPTH / 2));
    let error = Rule::parse(&mixed).unwrap_err();
    assert_eq!(error.column, 5 * MAX_DEPTH / 2 + 1);
    let nots = format!("{}a", "not ".repeat(1_000));
    assert_eq!(Rule::parse(&nots).unwrap_err().column, 4 * MAX_DEPTH + 1);
    // Long chains of `and`/`or` are not nesting.
    let chain = vec!["a"; 600].join(" and ");
    assert!(Rule::parse(&chain).is_ok());

    // Lists: 256 values.
    let list = |n: usize| format!("x in [{}]", vec!["1"; n].join(","));
    assert!(Rule::parse(&list(MAX_LIST_ITEMS)).is_ok());
    let error = Rule::parse(&list(MAX_LIST_ITEMS + 1)).unwrap_err();
    assert_eq!((error.line, error.column), (1, 7 + 2 * MAX_LIST_ITEMS));
    assert!(error.message.contains("a list holds at most 256 values"), "{error}");

    // Strings: 1,024 bytes once decoded, located at the opening quote.
    let string = |body: &str| format!("s == \"{body}\"");
    assert!(Rule::parse(&string(&"é".repeat(MAX_STRING_BYTES / 2))).is_ok());
    // Counted once decoded: 256 four-byte characters written as ten-byte escapes.
    assert!(Rule::parse(&string(&"\\u{10ffff}".repeat(MAX_STRING_BYTES / 4))).is_ok());
    let error = Rule::parse(&string(&"\\u{10ffff}".repeat(MAX_STRING_BYTES / 4 + 1))).unwrap_err();
    assert!(error.message.contains("at most 1024 bytes"), "{error}");
    let error = Rule::parse(&string(&format!("{}x", "é".repeat(MAX_STRING_BYTES / 2)))).unwrap_err();
    assert_eq!((error.line, error.column), (1, 6));
    assert!(error.message.contains("a string holds at most 1024 bytes"), "{error}");

    // Numbers: finite.
    assert!(Rule::parse("a == 1.7976931348623157e308").is_ok());
    assert!(Rule::parse("a == 1.8e308").unwrap_err().message.contains("out of range"));
}

#[test]
fn canonical_text() {
    let cases = [
        ("a==1", "a == 1"),
        (
            "lead_score>=60 and(country in[\"DE\",\"FR\",])",
            "lead_score >= 60 and country in [\"DE\", \"FR\"]",
        ),
        ("not(a)or(b and c)", "not a or b and c"),
        ("(a or b) and not (c or d)", "(a or b) and not (c or d)"),
        ("x not in []", "x not in []"),
        ("interest( \"/A & B\" ) >= 0.30", "interest(\"/A & B\") >= 0.3"),
        ("a\n  and\n  b", "a and b"),
        ("n == 1E3 or n == -0.0", "n == 1000 or n == -0"),
    ];
    for (text, canonical) in cases {
        let rule = Rule::parse(text).unwrap();
        assert_eq!(rule.to_string(), canonical);
        assert_eq!(Rule::parse(canonical).unwrap(), rule);
    }
    assert_ne!(Rule::parse("a and b").unwrap(), Rule::parse("b and a").unwrap());
    assert_ne!(Rule::parse("(a and b) and c").unwrap(), Rule::parse("a and b and c").unwrap());
    assert_eq!(Rule::parse("a ==\n1").unwrap(), Rule::parse("a == 1").unwrap());
}

#[test]
fn facts_from_values() {
    use portrait_core::value::Value;
    assert_eq!(Fact::from(&Value::Int(3)), Fact::Number(3.0));
    assert_eq!(Fact::from(&Value::String("x".into())), Fact::from("x"));
    assert_eq!(Fact::from(&Value::Array(vec![])), Fact::Null);
    assert_eq!(Fact::from(None::<bool>), Fact::Null);
    assert_eq!(Fact::from(Some(2.5)), Fact::Number(2.5));
}

// ---------------------------------------------------------------------------------------------
// Properties

/// Whether an error points inside the text: a line of it, and a column of that line or just
/// after its last character.
fn located_inside(text: &str, error: &RuleError) -> bool {
    let lines: Vec<&str> = text.split('\n').collect();
    error.line >= 1
        && error.line <= lines.len()
        && error.column >= 1
        && error.column <= lines[error.line - 1].chars().count() + 1
        && !error.message.is_empty()
}

/// Parses without panicking; an error is located inside the text; a rule evaluates without
/// panicking and its canonical text parses back to it.
fn parse_is_total(text: &str) -> Result<(), TestCaseError> {
    match Rule::parse(text) {
        Ok(rule) => {
            rule.eval(&sample());
            rule.eval(&Person::default());
            let canonical = rule.to_string();
            if canonical.len() <= MAX_RULE_BYTES {
                let again = Rule::parse(&canonical);
                prop_assert_eq!(again.as_ref(), Ok(&rule), "{}", canonical);
            }
        }
        Err(error) => prop_assert!(located_inside(text, &error), "{:?}: {}", text, error),
    }
    Ok(())
}

const VOCABULARY: &[&str] = &[
    "a",
    "lead_score",
    "country",
    "interest",
    "site_tag",
    "trait",
    "foo",
    "(",
    ")",
    "[",
    "]",
    ",",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "=",
    "!",
    "and",
    "or",
    "not",
    "in",
    "true",
    "false",
    "null",
    "AND",
    "0",
    "-1",
    "1.5",
    "1e3",
    "07",
    "1.",
    "-",
    ".",
    "\"DE\"",
    "\"\\u{e9}\"",
    "\"open",
    "\"\\q\"",
    "'x'",
    "&&",
    "||",
    "é",
    "@",
    "\u{0}",
    "\"",
];

fn token_soup() -> impl Strategy<Value = String> {
    let token = prop::sample::select(VOCABULARY);
    let gap = prop::sample::select(&["", " ", " ", "\n", "\t", "\r\n"][..]);
    prop::collection::vec((token, gap), 0..40)
        .prop_map(|parts| parts.into_iter().flat_map(|(token, gap)| [token, gap]).collect::<String>())
}

/// A string literal's text for `value`, escaping what must be and some of the rest.
fn quoted(value: &str, escape_all: bool) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() || escape_all => out.push_str(&format!("\\u{{{:X}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn number_text() -> impl Strategy<Value = String> {
    prop_oneof![
        (-1_000i64..1_000).prop_map(|n| n.to_string()),
        any::<f64>().prop_filter("finite", |x| x.is_finite()).prop_map(|x| format!("{x:?}")),
        any::<f64>().prop_filter("finite", |x| x.is_finite()).prop_map(|x| format!("{x:E}")),
        (0u32..100, 0u32..100).prop_map(|(a, b)| format!("{a}.{b:02}")),
    ]
}

fn literal_text() -> impl Strategy<Value = String> {
    prop_oneof![
        number_text(),
        (any::<String>(), any::<bool>()).prop_map(|(s, all)| quoted(&s, all)),
        Just("true".to_owned()),
        Just("false".to_owned()),
        Just("null".to_owned()),
    ]
}

fn name_text() -> impl Strategy<Value = String> {
    "[a-z_][a-z0-9_]{0,10}".prop_filter("not a keyword or function", |n| {
        !["and", "or", "not", "in", "true", "false", "null", "interest", "site_tag", "trait"]
            .contains(&n.as_str())
    })
}

fn operand_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => name_text(),
        1 => (prop::sample::select(&["interest", "site_tag", "trait"][..]), any::<String>())
            .prop_map(|(f, arg)| format!("{f}({})", quoted(&arg, false))),
        2 => literal_text(),
    ]
}

fn comparison_text() -> impl Strategy<Value = String> {
    let op = prop::sample::select(&["==", "!=", "<", "<=", ">", ">="][..]);
    let list = prop::collection::vec(literal_text(), 0..5).prop_map(|items| items.join(", "));
    prop_oneof![
        (operand_text(), op, operand_text()).prop_map(|(l, op, r)| format!("{l} {op} {r}")),
        (operand_text(), any::<bool>(), list).prop_map(|(o, negated, items)| {
            format!("{o} {}in [{items}]", if negated { "not " } else { "" })
        }),
        operand_text(),
    ]
}

/// Valid rule text, with random layout (spaces, newlines, redundant parentheses).
fn rule_text() -> impl Strategy<Value = String> {
    comparison_text().prop_recursive(4, 24, 4, |inner| {
        let gap = prop::sample::select(&[" ", "\n  ", "  "][..]);
        prop_oneof![
            (prop::collection::vec(inner.clone(), 2..4), gap.clone())
                .prop_map(|(items, gap)| format!("({})", items.join(&format!("{gap}and ")))),
            (prop::collection::vec(inner.clone(), 2..4), gap)
                .prop_map(|(items, gap)| format!("({})", items.join(&format!("{gap}or ")))),
            inner.clone().prop_map(|e| format!("not {e}")),
            inner.clone().prop_map(|e| format!("not ({e})")),
            inner.prop_map(|e| format!("({e})")),
        ]
    })
}

/// A value for `x` and a literal for `v` with the same meaning.
fn value_and_literal() -> impl Strategy<Value = (Fact<'static>, String)> {
    let texts = prop::sample::select(&["", "a", "DE", "de", "2026-01-01", "é"][..]);
    prop_oneof![
        Just((Fact::Null, "null".to_owned())),
        any::<bool>().prop_map(|b| (Fact::Bool(b), b.to_string())),
        (-3i32..3).prop_map(|n| (Fact::Number(f64::from(n)), n.to_string())),
        (-3i32..3).prop_map(|n| (Fact::Number(f64::from(n) / 4.0), format!("{:?}", f64::from(n) / 4.0))),
        texts.prop_map(|t| (Fact::from(t), quoted(t, false))),
    ]
}

fn with_x(x: Fact<'static>) -> Person {
    let x = match x {
        Fact::Text(t) => Fact::Text(Cow::Owned(t.into_owned())),
        other => other,
    };
    Person { values: vec![("x", x)], ..Person::default() }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_text_never_panics(text in any::<String>()) {
        parse_is_total(&text)?;
    }

    #[test]
    fn random_rule_like_text_never_panics(text in "[a-z_ ()\\[\\],=!<>\"\\\\\n0-9.eE+\\-u{}AN]{0,80}") {
        parse_is_total(&text)?;
    }

    #[test]
    fn token_soups_never_panic(text in token_soup()) {
        parse_is_total(&text)?;
    }

    #[test]
    fn long_texts_never_panic(text in "[a (]{4090,4100}") {
        parse_is_total(&text)?;
    }

    /// The canonical text of a rule parses back to the same rule, is its own canonical
    /// text, and reads the same names.
    #[test]
    fn canonical_text_round_trips(text in rule_text()) {
        prop_assume!(text.len() <= MAX_RULE_BYTES);
        let rule = Rule::parse(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        let canonical = rule.to_string();
        let again = Rule::parse(&canonical).map_err(|e| TestCaseError::fail(format!("{canonical}: {e}")))?;
        prop_assert_eq!(&again, &rule, "{} → {}", text, canonical);
        prop_assert_eq!(again.to_string(), canonical);
        let names = |r: &Rule| r.names().iter().map(|n| n.name.clone()).collect::<Vec<_>>();
        prop_assert_eq!(names(&again), names(&rule));
    }

    /// `!=` is `not ==`, `not in` is `not in`, `in` is a chain of `==`, and `<` mirrors `>`.
    #[test]
    fn operators_keep_their_laws((x, _) in value_and_literal(), (_, v) in value_and_literal(), (_, w) in value_and_literal()) {
        let person = with_x(x.clone());
        let holds = |rule: String| Rule::parse(&rule).unwrap().eval(&person);
        prop_assert_eq!(holds(format!("x != {v}")), !holds(format!("x == {v}")));
        prop_assert_eq!(holds(format!("x in [{v}, {w}]")), holds(format!("x == {v} or x == {w}")));
        prop_assert_eq!(holds(format!("x not in [{v}, {w}]")), holds(format!("not x in [{v}, {w}]")));
        prop_assert_eq!(holds(format!("x < {v}")), holds(format!("{v} > x")));
        prop_assert_eq!(holds(format!("x >= {v}")), holds(format!("{v} <= x")));
        if matches!(x, Fact::Number(_) | Fact::Text(_)) {
            prop_assert_eq!(holds(format!("x <= {v}")), holds(format!("x < {v} or x == {v}")));
        }
        prop_assert_eq!(holds(format!("x == {v}")), holds(format!("{v} == x")));
    }
}
