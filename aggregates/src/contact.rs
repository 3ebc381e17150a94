//! How to reach a customer: an [`Email`] and a [`Phone`], each validated once on the way in and
//! stored in one canonical form, so two spellings of the same address compare equal.
//!
//! - Emails are trimmed and validated by the `email_address` crate (RFC 5322 addr-spec, without
//!   display names or IP-literal domains, and the domain must have a top-level domain); the domain
//!   is lower-cased because it is case-insensitive (the local part is left alone: it may not be).
//! - Phones are parsed by the `phonenumber` crate (libphonenumber's metadata) with Russia as the
//!   default region, so `8 (916) 123-45-67` and `+7 916 123 45 67` both become the E.164 string
//!   `+79161234567`. Numbers the metadata says cannot exist, and numbers with an extension (E.164
//!   has no place for one), are refused.

use std::fmt;
use std::str::FromStr;

use email_address::{EmailAddress, Options};
use phonenumber::{Mode, country};
use serde::{Deserialize, Serialize};

/// The most digits an E.164 number has (country code included).
const E164_MAX_DIGITS: usize = 15;

/// Why a contact detail was refused. Both are input mistakes the caller shows next to the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContactError {
    /// Not an email address. The caller asks for one like `name@example.ru`.
    #[error("\"{input}\" is not a valid email address")]
    InvalidEmail { input: String },
    /// Not a phone number that can exist. The caller asks for one like `+7 916 123-45-67`.
    #[error("\"{input}\" is not a valid phone number")]
    InvalidPhone { input: String },
}

/// A validated email address with a lower-case domain. Serialized as the plain string.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    pub fn parse(input: &str) -> Result<Email, ContactError> {
        let options = Options::default()
            .without_display_text()
            .without_domain_literal()
            .with_required_tld();
        let address = EmailAddress::parse_with_options(input.trim(), options).map_err(|_| {
            ContactError::InvalidEmail {
                input: input.to_owned(),
            }
        })?;
        Ok(Email(format!(
            "{}@{}",
            address.local_part(),
            address.domain().to_lowercase()
        )))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A phone number in E.164 form, e.g. `+79161234567`. Serialized as the plain string.
///
/// Deserializing checks the E.164 shape (`+` and up to 15 digits) rather than the `phonenumber`
/// metadata: the metadata changes between releases, and a stored event must keep loading after an
/// upgrade even if its number's range has since been withdrawn.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Phone(String);

impl Phone {
    /// Parses a phone number, national Russian forms included (see the module docs).
    pub fn parse(input: &str) -> Result<Phone, ContactError> {
        let invalid = || ContactError::InvalidPhone {
            input: input.to_owned(),
        };
        let number =
            phonenumber::parse(Some(country::Id::RU), input.trim()).map_err(|_| invalid())?;
        if number.extension().is_some() || !phonenumber::is_valid(&number) {
            return Err(invalid());
        }
        let e164 = number.format().mode(Mode::E164).to_string();
        if !is_e164(&e164) {
            return Err(invalid());
        }
        Ok(Phone(e164))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `+` followed by 2 to 15 digits, the first not zero (no country code starts with 0).
fn is_e164(text: &str) -> bool {
    text.strip_prefix('+').is_some_and(|digits| {
        (2..=E164_MAX_DIGITS).contains(&digits.len())
            && digits.bytes().all(|byte| byte.is_ascii_digit())
            && !digits.starts_with('0')
    })
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Email {
    type Err = ContactError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        Email::parse(input)
    }
}

impl FromStr for Phone {
    type Err = ContactError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        Phone::parse(input)
    }
}

impl TryFrom<String> for Email {
    type Error = ContactError;

    fn try_from(input: String) -> Result<Self, Self::Error> {
        Email::parse(&input)
    }
}

impl TryFrom<String> for Phone {
    type Error = ContactError;

    /// Accepts exactly the stored form, E.164; see [`Phone`] for why this is not [`Phone::parse`].
    fn try_from(input: String) -> Result<Self, Self::Error> {
        if is_e164(&input) {
            Ok(Phone(input))
        } else {
            Err(ContactError::InvalidPhone { input })
        }
    }
}

impl From<Email> for String {
    fn from(email: Email) -> Self {
        email.0
    }
}

impl From<Phone> for String {
    fn from(phone: Phone) -> Self {
        phone.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn russian_national_and_international_forms_give_the_same_e164_number() {
        for input in [
            "8 (916) 123-45-67",
            "+7 916 123 45 67",
            "+79161234567",
            "89161234567",
            " 8-916-123-45-67 ",
        ] {
            assert_eq!(
                Phone::parse(input).unwrap().as_str(),
                "+79161234567",
                "{input}"
            );
        }
    }

    #[test]
    fn a_moscow_landline_is_accepted() {
        assert_eq!(
            Phone::parse("8 (495) 123-45-67").unwrap().to_string(),
            "+74951234567"
        );
    }

    #[test]
    fn foreign_numbers_keep_their_own_country_code() {
        assert_eq!(
            Phone::parse("+44 20 7946 0958").unwrap().as_str(),
            "+442079460958"
        );
    }

    #[test]
    fn numbers_that_cannot_exist_are_refused() {
        for input in [
            "",
            "123",
            "8 (916) 123-45",
            "+7 916 123 45 67 89",
            "not a phone",
        ] {
            assert_eq!(
                Phone::parse(input),
                Err(ContactError::InvalidPhone {
                    input: input.to_owned()
                }),
                "{input}"
            );
        }
    }

    #[test]
    fn a_number_with_an_extension_is_refused() {
        assert!(Phone::parse("+7 495 123-45-67 ext. 123").is_err());
    }

    #[test]
    fn a_phone_serializes_as_its_e164_string() {
        let phone = Phone::parse("8 916 123 45 67").unwrap();
        assert_eq!(serde_json::to_string(&phone).unwrap(), "\"+79161234567\"");
        assert_eq!(
            serde_json::from_str::<Phone>("\"+79161234567\"").unwrap(),
            phone
        );
        assert!(serde_json::from_str::<Phone>("\"8 916 123 45 67\"").is_err());
    }

    #[test]
    fn an_email_is_trimmed_and_its_domain_lower_cased() {
        let email = Email::parse("  Ivan.Petrov@Example.RU ").unwrap();
        assert_eq!(email.as_str(), "Ivan.Petrov@example.ru");
    }

    #[test]
    fn malformed_emails_are_refused() {
        for input in [
            "",
            "ivan",
            "ivan@",
            "@example.ru",
            "ivan@localhost",
            "Ivan <ivan@example.ru>",
            "ivan@[127.0.0.1]",
            "ivan petrov@example.ru",
        ] {
            assert_eq!(
                Email::parse(input),
                Err(ContactError::InvalidEmail {
                    input: input.to_owned()
                }),
                "{input}"
            );
        }
    }

    #[test]
    fn an_email_serializes_as_a_plain_string_and_is_validated_when_read() {
        let email = Email::parse("ivan@example.ru").unwrap();
        assert_eq!(
            serde_json::to_string(&email).unwrap(),
            "\"ivan@example.ru\""
        );
        assert_eq!(
            serde_json::from_str::<Email>("\"ivan@example.ru\"").unwrap(),
            email
        );
        assert!(serde_json::from_str::<Email>("\"ivan\"").is_err());
    }

    proptest! {
        #[test]
        fn a_parsed_phone_parses_back_to_itself(subscriber in 0..10_000_000u32) {
            let phone = Phone::parse(&format!("8 916 {subscriber:07}")).unwrap();
            prop_assert_eq!(Phone::parse(phone.as_str()), Ok(phone.clone()));
            prop_assert_eq!(Phone::try_from(String::from(phone.clone())), Ok(phone));
        }

        #[test]
        fn a_parsed_email_parses_back_to_itself(local in "[a-z0-9._]{1,20}", domain in "[A-Za-z]{1,10}") {
            if let Ok(email) = Email::parse(&format!("{local}@{domain}.Ru")) {
                prop_assert_eq!(Email::parse(email.as_str()), Ok(email.clone()));
                prop_assert!(email.as_str().ends_with(".ru"));
            }
        }
    }
}
