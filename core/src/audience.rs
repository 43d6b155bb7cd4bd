//! Audience rules: the conditions marketers write to define an audience, parsed once when the
//! configuration loads and evaluated on every profile (or account) change.
//!
//! ```text
//! lead_score >= 60 and interest("/Computers & Electronics") > 0.3
//!   and country in ["DE", "FR"] and not lifecycle == "customer"
//! ```
//!
//! # Grammar
//!
//! ```text
//! rule       := or
//! or         := and ("or" and)*
//! and        := unary ("and" unary)*
//! unary      := "not" unary | primary
//! primary    := "(" rule ")" | comparison
//! comparison := operand [ ("==" | "!=" | "<" | "<=" | ">" | ">=") operand
//!                       | "in" list | "not" "in" list ]
//! operand    := NAME | FUNCTION "(" STRING ")" | NUMBER | STRING | "true" | "false" | "null"
//! list       := "[" [literal ("," literal)* [","]] "]"
//! ```
//!
//! - `not` binds tighter than `and`, which binds tighter than `or`; `not` applies to a whole
//!   comparison: `not lifecycle == "customer"` is `not (lifecycle == "customer")`.
//!   `a == b == c` is an error, not a chain.
//! - Keywords (`and`, `or`, `not`, `in`, `true`, `false`, `null`) are lowercase;
//!   `AND` is an error that says so.
//! - NAME is `[a-z_][a-z0-9_]*`: a tag or a field of the profile ([`Facts::value`]).
//! - FUNCTION is one of `interest` (a topic's score, by path or name), `site_tag` (a site tag's
//!   score) and `trait` (a trait by key). These three names are reserved: a bare `interest`
//!   is an error asking for its argument.
//! - STRING is double-quoted, with the escapes `\"`, `\\`, `\n`, `\t` and `\u{…}` (1–6 hex
//!   digits); it ends on the line it starts. NUMBER is a JSON number (`-1`, `0.25`, `1e3`).
//! - Whitespace (any Unicode whitespace, newlines included) separates tokens anywhere.
//! - Columns in errors and [`Rule::names`] count characters (Unicode scalar values; a tab is
//!   one), lines count `\n`.
//!
//! # Meaning
//!
//! - Numbers compare numerically. Texts compare exactly (case-sensitive) and order by
//!   Unicode code points, so ISO dates order correctly: `signup_day >= "2026-01-01"`.
//! - `null` equals only `null`; an absent or unknown value *is* `null`, so
//!   `plan == null` asks "no plan" and `plan != null` "has a plan". Booleans and `null`
//!   only have `==` and `!=`: `<`, `<=`, `>`, `>=` on them are false.
//! - Values of different types are never equal: `==` is false, `!=` true, ordering false
//!   (`"60" == 60` is false).
//! - `!=` is always exactly `not ==`. NaN equals nothing (`==` false, `!=` true) and orders
//!   with nothing (all of `<`, `<=`, `>`, `>=` false).
//! - `x in [a, b]` is `x == a or x == b`; `x not in [a, b]` its negation; `x in []` is false.
//! - An operand used alone as a condition (`active_7d`, `interest("/Sports")`) holds when it
//!   is `true` or a number other than 0 (and not NaN); texts and `null` do not hold.
//! - Evaluation never fails and never panics; it allocates nothing itself, and reads only
//!   what it needs (`and` and `or` stop at the first deciding operand).
//!
//! # Limits
//!
//! A rule is at most [`MAX_RULE_BYTES`] bytes, nests at most [`MAX_DEPTH`] levels of
//! parentheses and `not`, a list holds at most [`MAX_LIST_ITEMS`] values, a string literal at
//! most [`MAX_STRING_BYTES`] bytes, and numbers are finite. Parsing is linear in the text and
//! its recursion is bounded by [`MAX_DEPTH`].
//!
//! Every error names the line and column (1-based, in characters) of the rule text:
//!
//! ```
//! use portrait_core::audience::{Fact, Facts, Rule};
//!
//! struct Person;
//!
//! impl Facts for Person {
//!     fn value(&self, name: &str) -> Fact<'_> {
//!         match name {
//!             "lead_score" => Fact::Number(72.0),
//!             "country" => Fact::from("DE"),
//!             _ => Fact::Null,
//!         }
//!     }
//!     fn interest(&self, topic: &str) -> f64 {
//!         if topic == "/Computers & Electronics" { 0.5 } else { 0.0 }
//!     }
//!     fn site_tag(&self, _tag: &str) -> f64 {
//!         0.0
//!     }
//!     fn trait_value(&self, _key: &str) -> Fact<'_> {
//!         Fact::Null
//!     }
//! }
//!
//! let rule = Rule::parse(
//!     "lead_score >= 60 and interest(\"/Computers & Electronics\") > 0.3\n\
//!      and country in [\"DE\", \"FR\"] and not lifecycle == \"customer\"",
//! )
//! .unwrap();
//! assert!(rule.eval(&Person));
//! assert_eq!(rule.names()[0].name, "lead_score");
//!
//! let error = Rule::parse("lead_score >= 60 and\n  country = \"DE\"").unwrap_err();
//! assert_eq!(
//!     error.to_string(),
//!     "line 2, column 11: expected a comparison operator or \"and\"/\"or\" after country, \
//!      found \"=\" (did you mean \"==\"?)"
//! );
//! ```

use crate::value::Value;
use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// The longest rule text, in bytes.
pub const MAX_RULE_BYTES: usize = 4_096;
/// The deepest nesting of parentheses and `not`.
pub const MAX_DEPTH: usize = 32;
/// The most values in one `in [...]` list.
pub const MAX_LIST_ITEMS: usize = 256;
/// The longest string literal, in bytes once its escapes are decoded.
pub const MAX_STRING_BYTES: usize = 1_024;

const FUNCTIONS: &str = "interest, site_tag or trait";

/// A parsed audience rule.
///
/// Equality compares what the rules say, not where they were written: a rule equals the
/// rule parsed from its [`Display`](fmt::Display) text.
#[derive(Clone, Debug)]
pub struct Rule {
    expr: Expr,
    names: Vec<NameUse>,
}

impl PartialEq for Rule {
    fn eq(&self, other: &Rule) -> bool {
        self.expr == other.expr
    }
}

/// One place a rule reads a plain NAME, with its 1-based line and column (in characters).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameUse {
    pub name: String,
    pub line: usize,
    pub column: usize,
}

/// A rule that does not parse, located in its text: 1-based line and column (in characters).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}: {}", self.line, self.column, self.message)
    }
}

impl std::error::Error for RuleError {}

/// A value a rule compares. Texts may borrow from the [`Facts`] that hold them.
#[derive(Clone, Debug, PartialEq)]
pub enum Fact<'a> {
    Null,
    Bool(bool),
    Number(f64),
    Text(Cow<'a, str>),
}

impl From<bool> for Fact<'_> {
    fn from(value: bool) -> Self {
        Fact::Bool(value)
    }
}

impl From<f64> for Fact<'_> {
    fn from(value: f64) -> Self {
        Fact::Number(value)
    }
}

impl<'a> From<&'a str> for Fact<'a> {
    fn from(value: &'a str) -> Self {
        Fact::Text(Cow::Borrowed(value))
    }
}

impl From<String> for Fact<'_> {
    fn from(value: String) -> Self {
        Fact::Text(Cow::Owned(value))
    }
}

impl<'a, T: Into<Fact<'a>>> From<Option<T>> for Fact<'a> {
    fn from(value: Option<T>) -> Self {
        value.map_or(Fact::Null, Into::into)
    }
}

/// A property or trait value as a rule sees it, borrowing its text. Integers become numbers
/// (exact up to 2^53); arrays and objects are not something a rule compares: they read as null.
impl<'a> From<&'a Value> for Fact<'a> {
    fn from(value: &'a Value) -> Self {
        match value {
            Value::Bool(b) => Fact::Bool(*b),
            Value::Int(i) => Fact::Number(*i as f64),
            Value::Float(x) => Fact::Number(*x),
            Value::String(s) => Fact::Text(Cow::Borrowed(s)),
            Value::Null | Value::Array(_) | Value::Object(_) => Fact::Null,
        }
    }
}

/// What a rule reads: a profile's (or an account's) tags, fields, interests and traits.
pub trait Facts {
    /// A tag or field by NAME; [`Fact::Null`] when unknown or absent.
    fn value(&self, name: &str) -> Fact<'_>;
    /// The score of a topic, given by path (`/Computers & Electronics`) or name; 0 if absent.
    fn interest(&self, topic: &str) -> f64;
    /// The score of a site tag; 0 if absent.
    fn site_tag(&self, tag: &str) -> f64;
    /// A trait by key; [`Fact::Null`] when absent.
    fn trait_value(&self, key: &str) -> Fact<'_>;
}

#[derive(Clone, Debug, PartialEq)]
enum Expr {
    /// Two or more alternatives (a single one is never wrapped).
    Or(Vec<Expr>),
    /// Two or more conditions.
    And(Vec<Expr>),
    Not(Box<Expr>),
    Compare(Operand, Op, Operand),
    In {
        operand: Operand,
        list: Vec<Fact<'static>>,
        negated: bool,
    },
    /// An operand alone: holds when `true` or a non-zero number.
    Holds(Operand),
}

#[derive(Clone, Debug, PartialEq)]
enum Operand {
    Name(Box<str>),
    Call(Function, Box<str>),
    Literal(Fact<'static>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Function {
    Interest,
    SiteTag,
    Trait,
}

impl Function {
    fn from_name(name: &str) -> Option<Function> {
        match name {
            "interest" => Some(Function::Interest),
            "site_tag" => Some(Function::SiteTag),
            "trait" => Some(Function::Trait),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Function::Interest => "interest",
            Function::SiteTag => "site_tag",
            Function::Trait => "trait",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    fn text(self) -> &'static str {
        match self {
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }
}

impl Rule {
    /// Parses a rule, or says where and why it is wrong.
    pub fn parse(text: &str) -> Result<Rule, RuleError> {
        if text.len() > MAX_RULE_BYTES {
            // Point at the character that crosses the limit.
            let mut at = Pos::START;
            for c in text.chars() {
                if at.offset + c.len_utf8() > MAX_RULE_BYTES {
                    break;
                }
                at.advance(c);
            }
            let message = format!("the rule is too long: {} bytes (at most {MAX_RULE_BYTES})", text.len());
            return Err(at.error(message));
        }
        Parser::new(text).rule()
    }

    /// Whether the facts satisfy the rule.
    pub fn eval(&self, facts: &dyn Facts) -> bool {
        self.expr.eval(facts)
    }

    /// Every plain NAME the rule reads, each time it reads it, in the order of the text
    /// (so that configuration loading can reject unknown names with a located error).
    pub fn names(&self) -> &[NameUse] {
        &self.names
    }
}

impl FromStr for Rule {
    type Err = RuleError;

    fn from_str(text: &str) -> Result<Rule, RuleError> {
        Rule::parse(text)
    }
}

impl Expr {
    fn eval(&self, facts: &dyn Facts) -> bool {
        match self {
            Expr::Or(items) => items.iter().any(|item| item.eval(facts)),
            Expr::And(items) => items.iter().all(|item| item.eval(facts)),
            Expr::Not(inner) => !inner.eval(facts),
            Expr::Compare(left, op, right) => compare(&left.fetch(facts), *op, &right.fetch(facts)),
            Expr::In { operand, list, negated } => {
                let value = operand.fetch(facts);
                list.iter().any(|item| equal(&value, item)) != *negated
            }
            Expr::Holds(operand) => match *operand.fetch(facts) {
                Fact::Bool(b) => b,
                Fact::Number(x) => x != 0.0 && !x.is_nan(),
                Fact::Null | Fact::Text(_) => false,
            },
        }
    }
}

impl Operand {
    fn fetch<'a>(&'a self, facts: &'a dyn Facts) -> Cow<'a, Fact<'a>> {
        match self {
            Operand::Literal(fact) => Cow::Borrowed(fact),
            Operand::Name(name) => Cow::Owned(facts.value(name)),
            Operand::Call(Function::Interest, topic) => Cow::Owned(Fact::Number(facts.interest(topic))),
            Operand::Call(Function::SiteTag, tag) => Cow::Owned(Fact::Number(facts.site_tag(tag))),
            Operand::Call(Function::Trait, key) => Cow::Owned(facts.trait_value(key)),
        }
    }
}

fn equal(a: &Fact<'_>, b: &Fact<'_>) -> bool {
    match (a, b) {
        (Fact::Null, Fact::Null) => true,
        (Fact::Bool(x), Fact::Bool(y)) => x == y,
        (Fact::Number(x), Fact::Number(y)) => x == y,
        (Fact::Text(x), Fact::Text(y)) => x == y,
        _ => false,
    }
}

fn order(a: &Fact<'_>, b: &Fact<'_>) -> Option<Ordering> {
    match (a, b) {
        (Fact::Number(x), Fact::Number(y)) => x.partial_cmp(y),
        (Fact::Text(x), Fact::Text(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn compare(a: &Fact<'_>, op: Op, b: &Fact<'_>) -> bool {
    match op {
        Op::Eq => equal(a, b),
        Op::Ne => !equal(a, b),
        Op::Lt => order(a, b) == Some(Ordering::Less),
        Op::Le => matches!(order(a, b), Some(Ordering::Less | Ordering::Equal)),
        Op::Gt => order(a, b) == Some(Ordering::Greater),
        Op::Ge => matches!(order(a, b), Some(Ordering::Greater | Ordering::Equal)),
    }
}

// ---------------------------------------------------------------------------------------------
// Canonical text

impl fmt::Display for Rule {
    /// The canonical text: single spaces, parentheses only where the structure needs them,
    /// strings with the minimal escapes. Parsing it gives an equal rule.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.expr.fmt(f)
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Parentheses around a child that would otherwise bind differently.
        let child = |f: &mut fmt::Formatter<'_>, e: &Expr, wrap: bool| {
            if wrap { write!(f, "({e})") } else { write!(f, "{e}") }
        };
        match self {
            Expr::Or(items) => {
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" or ")?;
                    }
                    child(f, item, matches!(item, Expr::Or(_)))?;
                }
                Ok(())
            }
            Expr::And(items) => {
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" and ")?;
                    }
                    child(f, item, matches!(item, Expr::Or(_) | Expr::And(_)))?;
                }
                Ok(())
            }
            Expr::Not(inner) => {
                f.write_str("not ")?;
                child(f, inner, matches!(**inner, Expr::Or(_) | Expr::And(_)))
            }
            Expr::Compare(left, op, right) => write!(f, "{left} {} {right}", op.text()),
            Expr::In { operand, list, negated } => {
                write!(f, "{operand} {}[", if *negated { "not in " } else { "in " })?;
                for (i, item) in list.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write_literal(f, item)?;
                }
                f.write_str("]")
            }
            Expr::Holds(operand) => write!(f, "{operand}"),
        }
    }
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Name(name) => f.write_str(name),
            Operand::Call(function, argument) => {
                write!(f, "{}(", function.name())?;
                write_string(f, argument)?;
                f.write_str(")")
            }
            Operand::Literal(fact) => write_literal(f, fact),
        }
    }
}

fn write_literal(f: &mut fmt::Formatter<'_>, fact: &Fact<'_>) -> fmt::Result {
    match fact {
        Fact::Null => f.write_str("null"),
        Fact::Bool(b) => write!(f, "{b}"),
        Fact::Number(x) => {
            // Rust prints the shortest text that reads back as the same f64; positional
            // notation unless that is long (1e300), which the exponent form keeps short.
            let plain = x.to_string();
            if plain.len() <= 24 { f.write_str(&plain) } else { write!(f, "{x:e}") }
        }
        Fact::Text(text) => write_string(f, text),
    }
}

fn write_string(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in text.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\t' => f.write_str("\\t")?,
            c if c.is_control() => write!(f, "\\u{{{:x}}}", c as u32)?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}

// ---------------------------------------------------------------------------------------------
// Lexer

/// A place in the rule text: byte offset, and 1-based line and column (in characters).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Pos {
    offset: usize,
    line: usize,
    column: usize,
}

impl Pos {
    const START: Pos = Pos { offset: 0, line: 1, column: 1 };

    fn advance(&mut self, c: char) {
        self.offset += c.len_utf8();
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
    }

    fn error(self, message: impl Into<String>) -> RuleError {
        RuleError { line: self.line, column: self.column, message: message.into() }
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Kind {
    Name,
    Number(f64),
    Str(Box<str>),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Op(Op),
    And,
    Or,
    Not,
    In,
    True,
    False,
    Null,
    /// Something the grammar never accepts, kept as a token so that the parser can say what
    /// it expected there; with a hint when the mistake is a common one (`=`, `&&`, `'`).
    Stray(Option<&'static str>),
    End,
}

#[derive(Clone, Debug)]
struct Token {
    kind: Kind,
    start: Pos,
    end: Pos,
}

struct Lexer<'t> {
    text: &'t str,
    pos: Pos,
    /// Where the last token ended: the end of the rule is reported there, not after
    /// trailing blank lines.
    last_end: Pos,
}

impl<'t> Lexer<'t> {
    fn peek_char(&self) -> Option<char> {
        self.text[self.pos.offset..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek_char()?;
        self.pos.advance(c);
        Some(c)
    }

    fn eat(&mut self, wanted: char) -> bool {
        let matched = self.peek_char() == Some(wanted);
        if matched {
            self.bump();
        }
        matched
    }

    fn eat_while(&mut self, wanted: impl Fn(char) -> bool) {
        while self.peek_char().is_some_and(&wanted) {
            self.bump();
        }
    }

    fn next_token(&mut self) -> Result<Token, RuleError> {
        self.eat_while(char::is_whitespace);
        let start = self.pos;
        let Some(c) = self.bump() else {
            return Ok(Token { kind: Kind::End, start: self.last_end, end: self.last_end });
        };
        let kind = match c {
            '(' => Kind::LParen,
            ')' => Kind::RParen,
            '[' => Kind::LBracket,
            ']' => Kind::RBracket,
            ',' => Kind::Comma,
            '=' if self.eat('=') => Kind::Op(Op::Eq),
            '=' if self.eat('>') => Kind::Stray(Some("did you mean \">=\"?")),
            '=' if self.eat('<') => Kind::Stray(Some("did you mean \"<=\"?")),
            '=' => Kind::Stray(Some("did you mean \"==\"?")),
            '!' if self.eat('=') => Kind::Op(Op::Ne),
            '!' => Kind::Stray(Some("use \"not\" to negate a condition")),
            '<' if self.eat('=') => Kind::Op(Op::Le),
            '<' if self.eat('>') => Kind::Stray(Some("use \"!=\" for \"not equal\"")),
            '<' => Kind::Op(Op::Lt),
            '>' if self.eat('=') => Kind::Op(Op::Ge),
            '>' => Kind::Op(Op::Gt),
            '&' => {
                self.eat('&');
                Kind::Stray(Some("use \"and\""))
            }
            '|' => {
                self.eat('|');
                Kind::Stray(Some("use \"or\""))
            }
            '\'' | '\u{2018}' | '\u{2019}' | '\u{201c}' | '\u{201d}' => {
                Kind::Stray(Some("strings use straight double quotes: \"DE\""))
            }
            '.' if self.peek_char().is_some_and(|c| c.is_ascii_digit()) => {
                Kind::Stray(Some("write a digit before the point: 0.5"))
            }
            '"' => self.string(start)?,
            '-' if self.peek_char().is_some_and(|c| c.is_ascii_digit()) => self.number(start, c)?,
            '0'..='9' => self.number(start, c)?,
            'a'..='z' | 'A'..='Z' | '_' => self.word(start)?,
            _ => Kind::Stray(None),
        };
        self.last_end = self.pos;
        Ok(Token { kind, start, end: self.pos })
    }

    fn word(&mut self, start: Pos) -> Result<Kind, RuleError> {
        self.eat_while(|c| c.is_ascii_alphanumeric() || c == '_');
        let word = &self.text[start.offset..self.pos.offset];
        let kind = match word {
            "and" => Kind::And,
            "or" => Kind::Or,
            "not" => Kind::Not,
            "in" => Kind::In,
            "true" => Kind::True,
            "false" => Kind::False,
            "null" => Kind::Null,
            _ if !word.bytes().any(|b| b.is_ascii_uppercase()) => Kind::Name,
            _ => {
                let lower = word.to_ascii_lowercase();
                let message = if ["and", "or", "not", "in", "true", "false", "null"].contains(&&*lower) {
                    format!("keywords are lowercase: write \"{lower}\", not \"{word}\"")
                } else {
                    format!("names are lowercase (a-z, 0-9 and _): found \"{}\"", excerpt(word))
                };
                return Err(start.error(message));
            }
        };
        Ok(kind)
    }

    /// A JSON number whose first character, `first` (a digit, or `-` before one), is consumed.
    fn number(&mut self, start: Pos, first: char) -> Result<Kind, RuleError> {
        let digit = |c: char| c.is_ascii_digit();
        let first = if first == '-' { self.bump() } else { Some(first) };
        if first == Some('0') && self.peek_char().is_some_and(digit) {
            self.eat_while(digit);
            let written = &self.text[start.offset..self.pos.offset];
            let digits = match written.trim_start_matches('-').trim_start_matches('0') {
                "" => "0",
                digits => digits,
            };
            let sign = if written.starts_with('-') { "-" } else { "" };
            let message = format!("numbers have no leading zeros: write {sign}{digits}, not {written}");
            return Err(start.error(message));
        }
        self.eat_while(digit);
        if self.peek_char() == Some('.') {
            self.bump();
            if !self.peek_char().is_some_and(digit) {
                return Err(start.error("expected digits after the decimal point: write 1.0 or 1"));
            }
            self.eat_while(digit);
        }
        if matches!(self.peek_char(), Some('e' | 'E')) && self.exponent_follows() {
            self.bump();
            if matches!(self.peek_char(), Some('+' | '-')) {
                self.bump();
            }
            self.eat_while(digit);
        }
        if self.peek_char().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') {
            self.eat_while(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
            let word = &self.text[start.offset..self.pos.offset];
            let message =
                format!("\"{}\" is neither a number nor a name (names start with a-z or _)", excerpt(word));
            return Err(start.error(message));
        }
        let text = &self.text[start.offset..self.pos.offset];
        match text.parse::<f64>() {
            Ok(x) if x.is_finite() => Ok(Kind::Number(x)),
            _ => Err(start.error(format!("the number {} is out of range", excerpt(text)))),
        }
    }

    /// Whether the `e` at the current position starts a well-formed exponent.
    fn exponent_follows(&self) -> bool {
        let mut rest = self.text[self.pos.offset + 1..].chars();
        match rest.next() {
            Some('+' | '-') => rest.next().is_some_and(|c| c.is_ascii_digit()),
            Some(c) => c.is_ascii_digit(),
            None => false,
        }
    }

    /// A string literal; the opening quote is consumed.
    fn string(&mut self, start: Pos) -> Result<Kind, RuleError> {
        let mut value = String::new();
        loop {
            let at = self.pos;
            match self.bump() {
                None | Some('\n' | '\r') => {
                    return Err(start.error("unterminated string: it needs a closing \" on the same line"));
                }
                Some('"') => break,
                Some('\\') => value.push(self.escape(at)?),
                Some(c) if c.is_control() && c != '\t' => {
                    let message =
                        format!("a control character in a string: write it as \\u{{{:x}}}", c as u32);
                    return Err(at.error(message));
                }
                Some(c) => value.push(c),
            }
            if value.len() > MAX_STRING_BYTES {
                return Err(start.error(format!("a string holds at most {MAX_STRING_BYTES} bytes")));
            }
        }
        Ok(Kind::Str(value.into_boxed_str()))
    }

    /// The character of an escape whose backslash (at `at`) is consumed.
    fn escape(&mut self, at: Pos) -> Result<char, RuleError> {
        const KNOWN: &str = "the escapes are \\\", \\\\, \\n, \\t and \\u{…}";
        match self.bump() {
            Some('"') => Ok('"'),
            Some('\\') => Ok('\\'),
            Some('n') => Ok('\n'),
            Some('t') => Ok('\t'),
            Some('u') => {
                let bad = || at.error("write a \\u escape as \\u{…} with 1 to 6 hex digits, e.g. \\u{e9}");
                if !self.eat('{') {
                    return Err(bad());
                }
                let digits_start = self.pos.offset;
                self.eat_while(|c| c.is_ascii_hexdigit());
                let digits = &self.text[digits_start..self.pos.offset];
                if digits.is_empty() || digits.len() > 6 || !self.eat('}') {
                    return Err(bad());
                }
                let code = u32::from_str_radix(digits, 16).map_err(|_| bad())?;
                char::from_u32(code)
                    .ok_or_else(|| at.error(format!("\\u{{{digits}}} is not a Unicode character")))
            }
            Some(c) if !c.is_control() => Err(at.error(format!("unknown escape \\{c}: {KNOWN}"))),
            _ => Err(at.error(format!("a backslash must start an escape: {KNOWN}"))),
        }
    }
}

/// At most 40 characters of a piece of rule text, for messages (control characters escaped).
fn excerpt(text: &str) -> String {
    const MAX: usize = 40;
    let mut out = String::new();
    for c in text.chars().take(MAX) {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    if text.chars().nth(MAX).is_some() {
        out.push('…');
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Parser: recursive descent with one token of lookahead; its recursion is bounded by MAX_DEPTH
// (each level of parentheses or `not` costs a few frames, and nothing else recurses).

struct Parser<'t> {
    lexer: Lexer<'t>,
    peeked: Option<Token>,
    /// The last token taken, for "after …" in messages.
    previous: Option<Token>,
    depth: usize,
    /// Where each open parenthesis is, innermost last.
    open: Vec<Pos>,
    names: Vec<NameUse>,
}

impl<'t> Parser<'t> {
    fn new(text: &'t str) -> Parser<'t> {
        Parser {
            lexer: Lexer { text, pos: Pos::START, last_end: Pos::START },
            peeked: None,
            previous: None,
            depth: 0,
            open: Vec::new(),
            names: Vec::new(),
        }
    }

    fn peek(&mut self) -> Result<&Token, RuleError> {
        if self.peeked.is_none() {
            self.peeked = Some(self.lexer.next_token()?);
        }
        Ok(self.peeked.as_ref().expect("just filled"))
    }

    fn next(&mut self) -> Result<Token, RuleError> {
        let token = match self.peeked.take() {
            Some(token) => token,
            None => self.lexer.next_token()?,
        };
        self.previous = Some(token.clone());
        Ok(token)
    }

    fn peek_is(&mut self, kind: &Kind) -> Result<bool, RuleError> {
        Ok(self.peek()?.kind == *kind)
    }

    /// The source text of a token.
    fn text_of(&self, token: &Token) -> &'t str {
        &self.lexer.text[token.start.offset..token.end.offset]
    }

    /// `… after X`, X being the last token taken, as a message shows it.
    fn after(&self) -> String {
        match &self.previous {
            Some(token) => format!(" after {}", self.shown(token)),
            None => String::new(),
        }
    }

    /// A token as messages show it: names and values as written, the rest in quotes.
    fn shown(&self, token: &Token) -> String {
        let text = excerpt(self.text_of(token));
        match token.kind {
            Kind::Name | Kind::Number(_) | Kind::Str(_) => text,
            _ => format!("\"{text}\""),
        }
    }

    /// "expected {what}, found {token}", or "unexpected end of rule: expected {what}".
    fn expected(&self, what: &str, found: &Token) -> RuleError {
        if found.kind == Kind::End {
            return found.start.error(format!("unexpected end of rule: expected {what}"));
        }
        let shown = match found.kind {
            Kind::Name | Kind::Number(_) => format!("\"{}\"", excerpt(self.text_of(found))),
            _ => self.shown(found),
        };
        let hint = match found.kind {
            Kind::Stray(Some(hint)) => format!(" ({hint})"),
            _ => String::new(),
        };
        found.start.error(format!("expected {what}, found {shown}{hint}"))
    }

    fn rule(mut self) -> Result<Rule, RuleError> {
        if self.peek_is(&Kind::End)? {
            return Err(Pos::START.error("empty rule: write a condition such as lead_score >= 60"));
        }
        let expr = self.or()?;
        let end = self.next()?;
        if end.kind != Kind::End {
            // The checks after each condition leave nothing else here; kept as a guard.
            return Err(self.expected("\"and\" or \"or\"", &end));
        }
        Ok(Rule { expr, names: self.names })
    }

    fn or(&mut self) -> Result<Expr, RuleError> {
        let first = self.and()?;
        if !self.peek_is(&Kind::Or)? {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.peek_is(&Kind::Or)? {
            self.next()?;
            items.push(self.and()?);
        }
        Ok(Expr::Or(items))
    }

    fn and(&mut self) -> Result<Expr, RuleError> {
        let first = self.unary()?;
        if !self.peek_is(&Kind::And)? {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.peek_is(&Kind::And)? {
            self.next()?;
            items.push(self.unary()?);
        }
        Ok(Expr::And(items))
    }

    fn enter(&mut self, at: Pos) -> Result<(), RuleError> {
        if self.depth == MAX_DEPTH {
            let message =
                format!("the rule nests too deeply: at most {MAX_DEPTH} levels of \"(\" and \"not\"");
            return Err(at.error(message));
        }
        self.depth += 1;
        Ok(())
    }

    fn unary(&mut self) -> Result<Expr, RuleError> {
        if self.peek_is(&Kind::Not)? {
            let not = self.next()?;
            self.enter(not.start)?;
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, RuleError> {
        if !self.peek_is(&Kind::LParen)? {
            return self.comparison();
        }
        let open = self.next()?;
        self.enter(open.start)?;
        self.open.push(open.start);
        let inner = self.or()?;
        let close = self.next()?;
        if close.kind != Kind::RParen {
            let at = open.start;
            let what = format!("\")\" to close the \"(\" at line {}, column {}", at.line, at.column);
            return Err(self.expected(&what, &close));
        }
        self.open.pop();
        self.depth -= 1;
        self.follows_condition(false, None)?;
        Ok(inner)
    }

    fn comparison(&mut self) -> Result<Expr, RuleError> {
        let left_start = self.peek()?.start;
        let left = self.operand("a condition (a name, a value, \"not\" or \"(\")")?;
        let op = match self.peek()?.kind {
            Kind::Op(op) => op,
            Kind::In => {
                self.next()?;
                let list = self.list()?;
                self.follows_condition(false, None)?;
                return Ok(Expr::In { operand: left, list, negated: false });
            }
            Kind::Not => {
                self.next()?;
                let token = self.next()?;
                if token.kind != Kind::In {
                    return Err(
                        self.expected("\"in\" after \"not\" (as in: country not in [\"DE\"])", &token)
                    );
                }
                let list = self.list()?;
                self.follows_condition(false, None)?;
                return Ok(Expr::In { operand: left, list, negated: true });
            }
            _ => {
                self.follows_condition(true, Some(left_start))?;
                return Ok(Expr::Holds(left));
            }
        };
        self.next()?;
        let right_start = self.peek()?.start;
        let right = self.operand("a name or a value")?;
        self.follows_condition(false, Some(right_start))?;
        Ok(Expr::Compare(left, op, right))
    }

    /// After a whole condition only `and`, `or`, `)` (when one is open) or the end may come.
    /// Messages say what came before: the operand that started at `operand`, as written, or
    /// else the last token.
    fn follows_condition(&mut self, operator_allowed: bool, operand: Option<Pos>) -> Result<(), RuleError> {
        let open = !self.open.is_empty();
        let token = self.peek()?;
        match token.kind {
            Kind::And | Kind::Or | Kind::End => return Ok(()),
            Kind::RParen if open => return Ok(()),
            Kind::RParen => {
                return Err(token.start.error("unmatched \")\": there is no \"(\" for it to close"));
            }
            _ => {}
        }
        let token = token.clone();
        let what = match (operator_allowed, open) {
            (true, false) => "a comparison operator or \"and\"/\"or\"",
            (true, true) => "a comparison operator, \"and\"/\"or\" or \")\"",
            (false, false) => "\"and\" or \"or\"",
            (false, true) => "\"and\", \"or\" or \")\"",
        };
        let after = match (operand, &self.previous) {
            (Some(start), Some(last)) => {
                format!(" after {}", excerpt(&self.lexer.text[start.offset..last.end.offset]))
            }
            _ => self.after(),
        };
        Err(self.expected(&format!("{what}{after}"), &token))
    }

    fn operand(&mut self, what: &str) -> Result<Operand, RuleError> {
        let after = self.after();
        let token = self.next()?;
        let literal = match token.kind {
            Kind::Number(x) => Fact::Number(x),
            Kind::Str(ref s) => Fact::Text(Cow::Owned(s.to_string())),
            Kind::True => Fact::Bool(true),
            Kind::False => Fact::Bool(false),
            Kind::Null => Fact::Null,
            Kind::Name => return self.name_or_call(&token),
            _ => {
                return Err(self.expected(&format!("{what}{after}"), &token));
            }
        };
        Ok(Operand::Literal(literal))
    }

    fn name_or_call(&mut self, name: &Token) -> Result<Operand, RuleError> {
        let text = self.text_of(name);
        let function = Function::from_name(text);
        if !self.peek_is(&Kind::LParen)? {
            if function.is_some() {
                let message = format!("{text} is a function: write {text}(\"…\")");
                return Err(name.start.error(message));
            }
            let (line, column) = (name.start.line, name.start.column);
            self.names.push(NameUse { name: text.to_owned(), line, column });
            return Ok(Operand::Name(text.into()));
        }
        let Some(function) = function else {
            return Err(name.start.error(format!("unknown function {text} (expected {FUNCTIONS})")));
        };
        self.next()?; // (
        let argument = self.next()?;
        let Kind::Str(ref value) = argument.kind else {
            let example = match function {
                Function::Interest => "interest(\"/Sports\")",
                Function::SiteTag => "site_tag(\"intent:pricing\")",
                Function::Trait => "trait(\"plan\")",
            };
            return Err(self.expected(&format!("a quoted argument, as in {example}"), &argument));
        };
        let close = self.next()?;
        if close.kind != Kind::RParen {
            let what = format!("\")\" after the argument of {text}: it takes one string");
            return Err(self.expected(&what, &close));
        }
        Ok(Operand::Call(function, value.clone()))
    }

    /// `[` literal, … `]`, after `in`.
    fn list(&mut self) -> Result<Vec<Fact<'static>>, RuleError> {
        let after = self.after();
        let open = self.next()?;
        if open.kind != Kind::LBracket {
            let what = format!("a list such as [\"DE\", \"FR\"]{after}");
            return Err(self.expected(&what, &open));
        }
        let close_it =
            format!("\"]\" to close the \"[\" at line {}, column {}", open.start.line, open.start.column);
        let mut items = Vec::new();
        loop {
            let token = self.next()?;
            let item = match token.kind {
                Kind::RBracket => break,
                Kind::Number(x) => Fact::Number(x),
                Kind::Str(ref s) => Fact::Text(Cow::Owned(s.to_string())),
                Kind::True => Fact::Bool(true),
                Kind::False => Fact::Bool(false),
                Kind::Null => Fact::Null,
                Kind::End => return Err(self.expected(&close_it, &token)),
                Kind::Name | Kind::LParen => {
                    let what = "a value (lists hold only numbers, strings, true, false and null)";
                    return Err(self.expected(what, &token));
                }
                _ => return Err(self.expected("a value or \"]\"", &token)),
            };
            if items.len() == MAX_LIST_ITEMS {
                return Err(token.start.error(format!("a list holds at most {MAX_LIST_ITEMS} values")));
            }
            items.push(item);
            let separator = self.next()?;
            match separator.kind {
                Kind::Comma => {}
                Kind::RBracket => break,
                Kind::End => return Err(self.expected(&close_it, &separator)),
                _ => {
                    let what = format!("\",\" or \"]\" after {}", self.shown(&token));
                    return Err(self.expected(&what, &separator));
                }
            }
        }
        Ok(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Nothing;

    impl Facts for Nothing {
        fn value(&self, _: &str) -> Fact<'_> {
            Fact::Null
        }
        fn interest(&self, _: &str) -> f64 {
            0.0
        }
        fn site_tag(&self, _: &str) -> f64 {
            0.0
        }
        fn trait_value(&self, _: &str) -> Fact<'_> {
            Fact::Null
        }
    }

    #[test]
    fn precedence_shapes_the_tree() {
        let rule = Rule::parse("not a or b and c").unwrap();
        let name = |n: &str| Operand::Name(n.into());
        assert_eq!(
            rule.expr,
            Expr::Or(vec![
                Expr::Not(Box::new(Expr::Holds(name("a")))),
                Expr::And(vec![Expr::Holds(name("b")), Expr::Holds(name("c"))]),
            ])
        );
        let rule = Rule::parse("not x == 1").unwrap();
        assert!(matches!(rule.expr, Expr::Not(ref inner) if matches!(**inner, Expr::Compare(..))));
    }

    #[test]
    fn canonical_text_keeps_needed_parentheses_only() {
        let cases = [
            ("(a or b) and c", "(a or b) and c"),
            ("((a)) and (b == 1)", "a and b == 1"),
            ("a or (b or c)", "a or (b or c)"),
            ("not (a and b)", "not (a and b)"),
            ("not not a", "not not a"),
            ("x  not in[ 1,\"a\" ,]", "x not in [1, \"a\"]"),
            ("x in []", "x in []"),
            ("s == \"q\\\"\\\\\\n\\t\\u{7}é\"", "s == \"q\\\"\\\\\\n\\t\\u{7}é\""),
            ("n == 1e300 or n == -0.25 or n == 1E2", "n == 1e300 or n == -0.25 or n == 100"),
            ("trait(\"plan\") != null", "trait(\"plan\") != null"),
        ];
        for (text, canonical) in cases {
            let rule = Rule::parse(text).unwrap();
            assert_eq!(rule.to_string(), canonical, "{text}");
            assert_eq!(Rule::parse(canonical).unwrap(), rule, "{text}");
        }
    }

    /// The depth limit holds without the length limit: a million `(` or `not` stop at the
    /// 33rd, without exhausting the stack.
    #[test]
    fn depth_is_bounded_before_the_length_limit() {
        for (unit, width) in [("(", 1), ("not ", 4)] {
            let text = unit.repeat(1_000_000);
            let error = Parser::new(&text).rule().unwrap_err();
            assert_eq!((error.line, error.column), (1, MAX_DEPTH * width + 1), "{unit}");
            assert!(error.message.contains("nests too deeply"), "{}", error.message);
        }
        let deepest = format!("{}a{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert!(Rule::parse(&deepest).is_ok());
        let deepest_not = format!("{}a", "not ".repeat(MAX_DEPTH));
        assert!(!Rule::parse(&deepest_not).unwrap().eval(&Nothing), "an even number of not");
    }

    #[test]
    fn evaluation_allocates_nothing_for_literals() {
        let rule = Rule::parse("\"a\" in [\"b\", \"a\"]").unwrap();
        let Expr::In { ref operand, .. } = rule.expr else { panic!() };
        assert!(matches!(operand.fetch(&Nothing), Cow::Borrowed(_)));
        assert!(rule.eval(&Nothing));
    }
}
