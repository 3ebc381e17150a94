//! What the API accepts as text and as ids: every string and id argument and input field of the
//! schema is one of the types here, so each rule is written once and checked before any resolver
//! sees the value.
//!
//! A text input is refused with `VALIDATION` when it
//! - is longer than its field's documented maximum (counted in Unicode characters),
//! - holds a control character (C0, DEL, C1; multi-line fields allow newline and tab), a bidi
//!   override or isolate (U+202A–U+202E, U+2066–U+2069), or a line or paragraph separator
//!   (U+2028, U+2029): they rewrite what a terminal, a log viewer or a printed document shows,
//! - is blank: nothing but whitespace and invisible characters (zero-width spaces and joiners,
//!   the byte order mark, fillers), so a name cannot be made of nothing.
//!
//! Free text (names, addresses, reasons, notes, descriptions, specifications, gateway ids, ...)
//! that contains a card number is refused with `CARD_NUMBER_REFUSED`, before any other check, and
//! the answer never repeats the value; nothing is stored or logged. A card number here is a
//! sequence of 13 to 19 ASCII digits, with at most one space or dash between any two of them as
//! people type them, that passes the Luhn check (ISO/IEC 7812-1 annex B). About one in ten
//! 13–19-digit numbers passes that check by chance, so a long number of another kind may be
//! refused too; separated by a slash or a dot it is not read as one. Machine tokens (idempotency
//! keys, cursors, signatures, dates, phone numbers, VINs) keep their own strict formats and are not
//! scanned: a millisecond timestamp used as an idempotency key would otherwise be refused one time
//! in ten.
//!
//! An id ([`Id`]) is any UUID but the nil one (`00000000-0000-0000-0000-000000000000`), which
//! names nothing.
//!
//! The types keep the GraphQL names `String` and `UUID`, so the schema and every client's variable
//! declarations are unchanged; each field's description states its maximum (a test checks that
//! every string input documents the maximum its type enforces).

use std::borrow::Cow;
use std::fmt;
use std::ops::Deref;

use async_graphql::registry::Registry;
use async_graphql::{InputType, InputValueError, InputValueResult, Value};
use uuid::Uuid;

use crate::codes;

/// How a field's text may be shaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Free text on one line; scanned for card numbers.
    Line,
    /// Free text that may span lines: newline and tab are allowed; scanned for card numbers.
    Lines,
    /// A machine token with its own format (key, cursor, signature, date): one line, not scanned.
    Token,
}

/// When a value counts as a card number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CardCheck {
    /// Never (machine tokens).
    None,
    /// A Luhn-valid run of 13 to 19 digits anywhere in the text ([`contains_card_number`]).
    Luhn,
    /// At least this many digits in all: for a field that takes only a card's last four digits,
    /// anything as long as the shortest card number in use (12 digits) is one.
    Digits(usize),
}

/// The rule of one kind of text input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    /// How messages name the field.
    pub what: &'static str,
    /// The GraphQL argument and input-field names that take this kind of text.
    pub fields: &'static [&'static str],
    /// Longest accepted value, in Unicode characters.
    pub max_chars: usize,
    pub shape: Shape,
    pub cards: CardCheck,
}

/// Why a text was refused. Messages never repeat the value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "{what} looks like it holds a card number; card numbers are never accepted (nothing was stored)"
    )]
    CardNumber { what: &'static str },
    #[error("{what} must be at most {max} characters, got {got}")]
    TooLong {
        what: &'static str,
        max: usize,
        got: usize,
    },
    #[error(
        "{what} must not contain the control or formatting character {found} (at character {at})"
    )]
    Forbidden {
        what: &'static str,
        found: String,
        at: usize,
    },
    #[error("{what} must not be blank")]
    Blank { what: &'static str },
}

impl Refusal {
    /// The stable `extensions.code` a client gets.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::CardNumber { .. } => codes::CARD_NUMBER_REFUSED,
            _ => codes::VALIDATION,
        }
    }
}

impl Rule {
    /// Checks `text` against the rule: card numbers first (so a card number is never answered as
    /// merely too long), then length, characters and blankness.
    pub fn check(&self, text: &str) -> Result<(), Refusal> {
        let what = self.what;
        let card = match self.cards {
            CardCheck::None => false,
            CardCheck::Luhn => contains_card_number(text),
            CardCheck::Digits(min) => text.chars().filter(char::is_ascii_digit).count() >= min,
        };
        if card {
            return Err(Refusal::CardNumber { what });
        }
        // Bytes bound characters from above: most long values are refused without counting.
        if text.len() > self.max_chars {
            let got = text.chars().count();
            if got > self.max_chars {
                return Err(Refusal::TooLong {
                    what,
                    max: self.max_chars,
                    got,
                });
            }
        }
        let multiline = self.shape == Shape::Lines;
        if let Some((at, found)) = text
            .chars()
            .enumerate()
            .find(|(_, c)| forbidden(*c, multiline))
        {
            return Err(Refusal::Forbidden {
                what,
                found: format!("U+{:04X}", found as u32),
                at: at + 1,
            });
        }
        if text.chars().all(invisible) {
            return Err(Refusal::Blank { what });
        }
        Ok(())
    }
}

/// Control characters (Cc: C0, DEL, C1), bidi embeddings, overrides and isolates, and the Unicode
/// line and paragraph separators. Newline and tab only in multi-line fields.
fn forbidden(c: char, multiline: bool) -> bool {
    if multiline && (c == '\n' || c == '\t') {
        return false;
    }
    c.is_control()
        || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}')
}

/// Characters that show nothing: whitespace, zero-width spaces and joiners, word joiner and
/// invisible operators, the byte order mark, soft hyphen, combining grapheme joiner, Mongolian
/// vowel separator, Hangul fillers, the blank Braille pattern, and variation selectors.
fn invisible(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2800}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
        )
}

/// Whether `text` holds a card number: 13 to 19 ASCII digits that pass the Luhn check, written
/// together or in groups separated by one space or dash (`4111 1111 1111 1111`,
/// `3782-822463-10005`). A longer run of groups (a card number followed by its expiry, say) is
/// searched for any consecutive groups that form one.
pub fn contains_card_number(text: &str) -> bool {
    let mut digits: Vec<u8> = Vec::new();
    // Where each group of the current run starts, in `digits`.
    let mut groups: Vec<usize> = Vec::new();
    let mut separated = false;
    for c in text.chars().chain(std::iter::once('\u{0}')) {
        if let Some(digit) = c.to_digit(10) {
            if digits.is_empty() || separated {
                groups.push(digits.len());
            }
            digits.push(digit as u8);
            separated = false;
        } else if (c == ' ' || c == '-') && !digits.is_empty() && !separated {
            separated = true;
        } else {
            if run_holds_card_number(&digits, &groups) {
                return true;
            }
            digits.clear();
            groups.clear();
            separated = false;
        }
    }
    false
}

/// Whether consecutive groups of one run of digits form a Luhn-valid number of 13 to 19 digits.
fn run_holds_card_number(digits: &[u8], groups: &[usize]) -> bool {
    if digits.len() < 13 {
        return false;
    }
    for (index, &start) in groups.iter().enumerate() {
        for end in groups[index + 1..]
            .iter()
            .copied()
            .chain(std::iter::once(digits.len()))
        {
            let length = end - start;
            if length > 19 {
                break;
            }
            if length >= 13 && luhn(&digits[start..end]) {
                return true;
            }
        }
    }
    false
}

/// The Luhn check (ISO/IEC 7812-1 annex B): from the rightmost digit, double every second digit
/// (subtracting 9 above 9); the sum is a multiple of 10.
fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(index, &digit)| {
            let digit = u32::from(digit);
            if index % 2 == 1 {
                let doubled = digit * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                digit
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn refused<T: InputType>(refusal: Refusal) -> InputValueError<T> {
    let code = refusal.code();
    InputValueError::custom(refusal).with_extension("code", code)
}

fn not_a_string<T: InputType>(what: &str) -> InputValueError<T> {
    // The value is not repeated: it may be a card number typed as a JSON number.
    InputValueError::custom(format!("{what} must be a string"))
        .with_extension("code", codes::VALIDATION)
}

macro_rules! text_inputs {
    ($(
        $(#[$doc:meta])*
        $name:ident { what: $what:literal, fields: [$($field:literal),+], max: $max:expr, shape: $shape:ident, cards: $cards:expr $(, $secret:ident)? }
    )+) => {
        $(
            $(#[$doc])*
            #[derive(Clone, PartialEq, Eq, Hash)]
            pub struct $name(String);

            impl $name {
                pub const RULE: Rule = Rule {
                    what: $what,
                    fields: &[$($field),+],
                    max_chars: $max,
                    shape: Shape::$shape,
                    cards: $cards,
                };

                /// Checks `text` against [`Self::RULE`].
                pub fn new(text: impl Into<String>) -> Result<Self, Refusal> {
                    let text = text.into();
                    Self::RULE.check(&text)?;
                    Ok(Self(text))
                }

                pub fn as_str(&self) -> &str {
                    &self.0
                }

                pub fn into_string(self) -> String {
                    self.0
                }
            }

            impl Deref for $name {
                type Target = str;

                fn deref(&self) -> &str {
                    &self.0
                }
            }

            impl From<$name> for String {
                fn from(text: $name) -> String {
                    text.0
                }
            }

            /// A secret (a password, a token) shows only its length.
            impl fmt::Debug for $name {
                fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    if text_inputs!(@secret $($secret)?) {
                        write!(f, "<{} characters>", self.0.chars().count())
                    } else {
                        fmt::Debug::fmt(&self.0, f)
                    }
                }
            }

            /// The text itself; a secret shows only its length here too.
            impl fmt::Display for $name {
                fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    if text_inputs!(@secret $($secret)?) {
                        write!(f, "<{} characters>", self.0.chars().count())
                    } else {
                        f.write_str(&self.0)
                    }
                }
            }

            /// Inputs are fingerprinted as JSON for idempotency: exactly as the plain string was.
            impl serde::Serialize for $name {
                fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                    serializer.serialize_str(&self.0)
                }
            }

            impl InputType for $name {
                type RawValueType = String;

                fn type_name() -> Cow<'static, str> {
                    Cow::Borrowed("String")
                }

                fn create_type_info(registry: &mut Registry) -> String {
                    <String as InputType>::create_type_info(registry)
                }

                fn parse(value: Option<Value>) -> InputValueResult<Self> {
                    match value {
                        Some(Value::String(text)) => Self::new(text).map_err(refused),
                        _ => Err(not_a_string($what)),
                    }
                }

                fn to_value(&self) -> Value {
                    Value::String(self.0.clone())
                }

                fn as_raw_value(&self) -> Option<&String> {
                    Some(&self.0)
                }
            }
        )+

        /// Every text rule of the API, for the test that checks the schema documents them.
        pub const RULES: &[Rule] = &[$($name::RULE),+];
    };
    (@secret secret) => { true };
    (@secret) => { false };
}

text_inputs! {
    /// A person's full name.
    FullName { what: "fullName", fields: ["fullName"], max: 200, shape: Line, cards: CardCheck::Luhn }
    /// A postal address; may span lines.
    Address { what: "address", fields: ["address"], max: 500, shape: Lines, cards: CardCheck::Luhn }
    /// An email address (its format is checked by the domain).
    EmailText { what: "email", fields: ["email"], max: 254, shape: Line, cards: CardCheck::Luhn }
    /// A phone number in any common notation (the domain parses it into E.164).
    PhoneText { what: "phone", fields: ["phone"], max: 32, shape: Token, cards: CardCheck::None }
    /// A vehicle identification number (the domain checks its 17 characters).
    VinText { what: "vin", fields: ["vin"], max: 32, shape: Token, cards: CardCheck::None }
    /// A vehicle's make.
    Brand { what: "brand", fields: ["brand", "brands"], max: 100, shape: Line, cards: CardCheck::Luhn }
    /// A vehicle's model.
    Model { what: "model", fields: ["model", "models"], max: 100, shape: Line, cards: CardCheck::Luhn }
    /// A vehicle's trim level.
    Trim { what: "trim", fields: ["trim"], max: 100, shape: Line, cards: CardCheck::Luhn }
    /// A vehicle's colour.
    Colour { what: "colour", fields: ["colour"], max: 100, shape: Line, cards: CardCheck::Luhn }
    /// Where a vehicle stands.
    Location { what: "location", fields: ["location"], max: 200, shape: Line, cards: CardCheck::Luhn }
    /// The name of one specification line, e.g. "engine".
    SpecificationName { what: "specification name", fields: ["name"], max: 100, shape: Line, cards: CardCheck::Luhn }
    /// The value of one specification line, e.g. "1.6 petrol".
    SpecificationValue { what: "specification value", fields: ["value"], max: 500, shape: Line, cards: CardCheck::Luhn }
    /// Why something was cancelled, withdrawn, failed, refunded or rejected; may span lines.
    Reason { what: "reason", fields: ["reason"], max: 1000, shape: Lines, cards: CardCheck::Luhn }
    /// A payment gateway's transaction id.
    GatewayTransactionId { what: "gatewayTransactionId", fields: ["gatewayTransactionId"], max: 100, shape: Line, cards: CardCheck::Luhn }
    /// The last four digits of a card: anything with 12 digits or more is a card number.
    CardDigits { what: "cardLast4", fields: ["cardLast4"], max: 4, shape: Token, cards: CardCheck::Digits(12) }
    /// A mechanic's staff code, e.g. "M-017".
    MechanicId { what: "mechanicId", fields: ["mechanicId"], max: 16, shape: Line, cards: CardCheck::Luhn }
    /// Notes on a booking; may span lines.
    Notes { what: "notes", fields: ["notes"], max: 2000, shape: Lines, cards: CardCheck::Luhn }
    /// One line of work done in the workshop.
    WorkLine { what: "work line", fields: ["work"], max: 500, shape: Line, cards: CardCheck::Luhn }
    /// What happened, in a claim; may span lines.
    ClaimDescription { what: "description", fields: ["description"], max: 2000, shape: Lines, cards: CardCheck::Luhn }
    /// An insurer's id, e.g. "SEVER".
    InsurerId { what: "insurer", fields: ["insurer"], max: 32, shape: Line, cards: CardCheck::Luhn }
    /// A calendar date as `YYYY-MM-DD` (the field parses it).
    DateText { what: "date", fields: ["startDate", "incidentDate", "date"], max: 10, shape: Token, cards: CardCheck::None }
    /// A calendar month as `YYYY-MM`.
    MonthText { what: "month", fields: ["month"], max: 7, shape: Token, cards: CardCheck::None }
    /// A ledger account code, e.g. "1000" or "2200-SEVER".
    AccountCode { what: "account", fields: ["account"], max: 32, shape: Token, cards: CardCheck::None }
    /// A policy number as printed on the policy.
    PolicyNumber { what: "number", fields: ["number"], max: 64, shape: Token, cards: CardCheck::None }
    /// An electronic policy's canonical document (one line of JSON).
    PolicyDocument { what: "document", fields: ["document"], max: 16000, shape: Token, cards: CardCheck::None }
    /// An Ed25519 signature in base64.
    Signature { what: "signature", fields: ["signature"], max: 128, shape: Token, cards: CardCheck::None }
    /// An idempotency key: a retry with the same key and input returns the first result.
    IdempotencyKey { what: "idempotencyKey", fields: ["idempotencyKey"], max: 200, shape: Token, cards: CardCheck::None }
    /// A password as typed (the account policy checks its strength). Never printed.
    PasswordText { what: "password", fields: ["password", "currentPassword", "newPassword"], max: 128, shape: Token, cards: CardCheck::None, secret }
    /// An opaque refresh token as the server handed it out. Never printed.
    RefreshToken { what: "refreshToken", fields: ["refreshToken"], max: 512, shape: Token, cards: CardCheck::None, secret }
    /// The name an account is shown by.
    DisplayName { what: "displayName", fields: ["displayName"], max: 200, shape: Line, cards: CardCheck::Luhn }
    /// What a partner API key is for, e.g. "SEVER claims desk".
    KeyLabel { what: "label", fields: ["label"], max: 200, shape: Line, cards: CardCheck::Luhn }
    /// A promo code as a customer quotes it (the domain checks its letters and digits).
    PromoCodeText { what: "code", fields: ["code"], max: 32, shape: Token, cards: CardCheck::None }
    /// What a promotion is called, e.g. "Spring 2026".
    PromotionTitle { what: "title", fields: ["title"], max: 200, shape: Line, cards: CardCheck::Luhn }
    /// A page cursor as a connection handed it out.
    Cursor { what: "after", fields: ["after"], max: 512, shape: Token, cards: CardCheck::None }
}

/// The id of an object: any UUID except the nil one. GraphQL type `UUID`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(Uuid);

impl Id {
    /// `uuid`, unless it is the nil UUID.
    pub fn new(uuid: Uuid) -> Result<Self, &'static str> {
        if uuid.is_nil() {
            Err("the nil UUID (all zeros) names nothing and is not accepted as an id")
        } else {
            Ok(Self(uuid))
        }
    }

    pub fn uuid(self) -> Uuid {
        self.0
    }

    /// An id the server itself holds (a signed-in customer's own id), put where a client's could
    /// be; the nil UUID there would be a defect, answered as `INTERNAL`.
    pub fn known(uuid: Uuid) -> crate::ApiResult<Self> {
        Self::new(uuid).map_err(crate::ApiError::internal)
    }
}

impl Deref for Id {
    type Target = Uuid;

    fn deref(&self) -> &Uuid {
        &self.0
    }
}

impl From<Id> for Uuid {
    fn from(id: Id) -> Uuid {
        id.0
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Fingerprinted exactly as the plain UUID was.
impl serde::Serialize for Id {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl InputType for Id {
    type RawValueType = Uuid;

    fn type_name() -> Cow<'static, str> {
        Cow::Borrowed("UUID")
    }

    fn create_type_info(registry: &mut Registry) -> String {
        <Uuid as InputType>::create_type_info(registry)
    }

    fn parse(value: Option<Value>) -> InputValueResult<Self> {
        let invalid = |message: &str| {
            InputValueError::custom(message).with_extension("code", codes::VALIDATION)
        };
        let Some(Value::String(text)) = value else {
            return Err(invalid("an id must be a UUID string"));
        };
        let uuid = Uuid::parse_str(&text).map_err(|_| invalid("an id must be a UUID"))?;
        Id::new(uuid).map_err(invalid)
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.to_string())
    }

    fn as_raw_value(&self) -> Option<&Uuid> {
        Some(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_numbers_are_found_as_people_type_them() {
        for text in [
            "4111111111111111",
            "4111 1111 1111 1111",
            "4111-1111-1111-1111",
            "refund to card 5555 5555 5555 4444 please",
            "amex 3782-822463-10005",
            "4111 1111 1111 1111 12 29",
            "ref 12345 4111111111111111",
            "mir 2200 0000 0000 0004",
        ] {
            assert!(contains_card_number(text), "{text:?}");
        }
        for text in [
            "",
            "4111111111111112",
            "4111  1111 1111 1111",
            "4111/1111/1111/1111",
            "8 (916) 123-45-67",
            "0193a4b0-0000-7000-8000-0000000000c1",
            "41111111111111111111",
            "order 1234567890",
            "gw-000001",
        ] {
            assert!(!contains_card_number(text), "{text:?}");
        }
    }

    #[test]
    fn the_luhn_check_matches_its_worked_example() {
        // ISO/IEC 7812-1 annex B's example 7992739871 with check digit 3.
        assert!(luhn(&[7, 9, 9, 2, 7, 3, 9, 8, 7, 1, 3]));
        assert!(!luhn(&[7, 9, 9, 2, 7, 3, 9, 8, 7, 1, 4]));
    }

    #[test]
    fn control_bidi_and_blank_text_is_refused_and_ordinary_text_is_not() {
        let name = FullName::RULE;
        for good in [
            "Anna Petrova",
            "Анна Петрова",
            "José Ñúñez",
            "محمد",
            "a\u{200D}b",
        ] {
            assert_eq!(name.check(good), Ok(()), "{good:?}");
        }
        for bad in [
            "Anna\u{0}",
            "Anna\u{1b}[31m",
            "Anna\u{7f}",
            "Anna\u{85}",
            "Anna\nPetrova",
            "Anna\tPetrova",
            "Anna\u{202E}avortep",
            "\u{2066}Anna\u{2069}",
            "Anna\u{2028}",
        ] {
            assert!(
                matches!(name.check(bad), Err(Refusal::Forbidden { .. })),
                "{bad:?}"
            );
        }
        for blank in [
            "",
            "   ",
            "\u{200B}\u{200B}",
            "\u{FEFF}",
            " \u{2060} \u{3164}",
        ] {
            assert_eq!(
                name.check(blank),
                Err(Refusal::Blank { what: "fullName" }),
                "{blank:?}"
            );
        }
        let notes = Notes::RULE;
        assert_eq!(notes.check("line one\nline two\tindented"), Ok(()));
        assert!(notes.check("carriage\r\nreturn").is_err());
    }

    #[test]
    fn length_is_counted_in_characters_and_a_card_number_wins_over_length() {
        let name = FullName::RULE;
        assert_eq!(name.check(&"я".repeat(200)), Ok(()));
        assert_eq!(
            name.check(&"я".repeat(201)),
            Err(Refusal::TooLong {
                what: "fullName",
                max: 200,
                got: 201
            })
        );
        let long = format!("{} 4111 1111 1111 1111", "x".repeat(300));
        assert_eq!(
            name.check(&long),
            Err(Refusal::CardNumber { what: "fullName" })
        );
        let last4 = CardDigits::RULE;
        assert_eq!(last4.check("4242"), Ok(()));
        assert_eq!(
            last4.check("4111 1111 1111"),
            Err(Refusal::CardNumber { what: "cardLast4" })
        );
        assert!(matches!(last4.check("42424"), Err(Refusal::TooLong { .. })));
    }

    #[test]
    fn refusals_never_repeat_the_value() {
        let secret = "4111 1111 1111 1111";
        for rule in RULES {
            if let Err(refusal) = rule.check(secret) {
                assert!(!refusal.to_string().contains("1111"), "{refusal}");
            }
        }
        let Err(err) = FullName::parse(Some(Value::from(4_111_111_111_111_111_i64))) else {
            panic!("a number is not a name");
        };
        assert!(!format!("{:?}", err.into_server_error(Default::default())).contains("4111"));
    }

    #[test]
    fn the_nil_uuid_is_not_an_id() {
        assert!(Id::parse(Some(Value::from("00000000-0000-0000-0000-000000000000"))).is_err());
        assert!(Id::parse(Some(Value::from("not a uuid"))).is_err());
        let id = Id::parse(Some(Value::from("0193a4b0-0000-7000-8000-000000000001"))).unwrap();
        assert_eq!(id.to_string(), "0193a4b0-0000-7000-8000-000000000001");
    }
}
