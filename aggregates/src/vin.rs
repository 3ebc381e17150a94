//! Vehicle identification numbers (ISO 3779).
//!
//! A [`Vin`] is 17 characters from `0-9` and `A-Z` without `I`, `O` and `Q` (they read like `1` and
//! `0`). Input is trimmed and upper-cased first, so a clerk may type `xta210990y2766389`.
//!
//! **The check digit (position 9) is verified only where the market requires one.** 49 CFR 565
//! mandates it for vehicles built for North America, whose VINs start with `1`–`5` (USA, Canada,
//! Mexico): there a wrong check digit means a mistyped VIN, and it is refused. European (`W…`,
//! `V…`, `Z…`), Russian (`X…`) and Asian (`J…`, `K…`, `L…`) VINs carry no check digit (ISO 3779
//! does not require one, and position 9 is often a letter or filler), so checking them would refuse
//! real cars.
//!
//! The check digit is computed as in 49 CFR 565: each character is transliterated to a number
//! (digits as themselves; `A`–`H` 1–8, `J`–`N` 1–5, `P` 7, `R` 9, `S`–`Z` 2–9), multiplied by its
//! position's weight (8,7,6,5,4,3,2,10,0,9,8,7,6,5,4,3,2), summed, and taken modulo 11; a remainder
//! of 10 is written `X`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Characters in every VIN.
pub const VIN_LENGTH: usize = 17;

/// Position (1-based) of the check digit.
const CHECK_DIGIT_POSITION: usize = 9;

/// 49 CFR 565.15 weight of each position.
const WEIGHTS: [u32; VIN_LENGTH] = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2];

/// A validated vehicle identification number: 17 upper-case characters. Serialized as the plain
/// string; deserializing validates it again.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Vin(String);

/// Why a VIN was refused. Each is a typing mistake the clerk corrects and submits again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VinError {
    /// Not 17 characters. The caller asks for the full VIN.
    #[error("VIN must be 17 characters, got {length}")]
    WrongLength { length: usize },
    /// A character that never appears in a VIN (`position` counts from 1). The caller points the
    /// clerk at that position; `I`, `O` and `Q` are usually a mistyped `1` or `0`.
    #[error(
        "VIN cannot contain '{character}' (position {position}); VINs use digits and letters except I, O and Q"
    )]
    InvalidCharacter { character: char, position: usize },
    /// A North American VIN whose check digit (position 9) does not match the rest: almost always
    /// a typing mistake. The caller asks the clerk to re-read the VIN from the car.
    #[error(
        "VIN check digit is '{found}' but the other characters give '{expected}'; please re-read the VIN"
    )]
    CheckDigitMismatch { expected: char, found: char },
}

impl Vin {
    /// Parses a VIN: trims, upper-cases, checks length and characters, and checks the check digit
    /// for North American VINs (see the module docs).
    pub fn parse(input: &str) -> Result<Vin, VinError> {
        let vin = input.trim().to_ascii_uppercase();
        let length = vin.chars().count();
        if length != VIN_LENGTH {
            return Err(VinError::WrongLength { length });
        }
        let mut values = [0u32; VIN_LENGTH];
        for (index, character) in vin.chars().enumerate() {
            values[index] = transliterate(character).ok_or(VinError::InvalidCharacter {
                character,
                position: index + 1,
            })?;
        }
        if requires_check_digit(&vin) {
            let expected = check_digit(&values);
            let found = char::from(vin.as_bytes()[CHECK_DIGIT_POSITION - 1]);
            if expected != found {
                return Err(VinError::CheckDigitMismatch { expected, found });
            }
        }
        Ok(Vin(vin))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// North American VINs (world manufacturer identifier starting `1`–`5`) must carry a valid check
/// digit under 49 CFR 565; nobody else requires one.
fn requires_check_digit(vin: &str) -> bool {
    matches!(vin.as_bytes().first(), Some(b'1'..=b'5'))
}

/// The 49 CFR 565 value of a VIN character, or `None` when it cannot appear in a VIN.
fn transliterate(character: char) -> Option<u32> {
    let value = match character {
        '0'..='9' => character.to_digit(10)?,
        'A' | 'J' => 1,
        'B' | 'K' | 'S' => 2,
        'C' | 'L' | 'T' => 3,
        'D' | 'M' | 'U' => 4,
        'E' | 'N' | 'V' => 5,
        'F' | 'W' => 6,
        'G' | 'P' | 'X' => 7,
        'H' | 'Y' => 8,
        'R' | 'Z' => 9,
        _ => return None,
    };
    Some(value)
}

fn check_digit(values: &[u32; VIN_LENGTH]) -> char {
    let sum: u32 = values
        .iter()
        .zip(WEIGHTS)
        .map(|(value, weight)| value * weight)
        .sum();
    match sum % 11 {
        10 => 'X',
        remainder => char::from_digit(remainder, 10).unwrap_or('X'),
    }
}

impl fmt::Display for Vin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Vin {
    type Err = VinError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        Vin::parse(input)
    }
}

impl TryFrom<String> for Vin {
    type Error = VinError;

    fn try_from(input: String) -> Result<Self, Self::Error> {
        Vin::parse(&input)
    }
}

impl From<Vin> for String {
    fn from(vin: Vin) -> Self {
        vin.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_north_american_vin_with_a_valid_check_digit_is_accepted() {
        // The classic 49 CFR 565 example: the check digit is X (remainder 10).
        assert_eq!(
            Vin::parse("1M8GDM9AXKP042788").unwrap().as_str(),
            "1M8GDM9AXKP042788"
        );
        assert!(Vin::parse("1HGCM82633A004352").is_ok()); // USA
        assert!(Vin::parse("3VWFE21C04M000001").is_ok()); // Mexico
    }

    #[test]
    fn a_north_american_vin_with_a_wrong_check_digit_is_refused() {
        assert_eq!(
            Vin::parse("1M8GDM9AXKP042789"),
            Err(VinError::CheckDigitMismatch {
                expected: '1',
                found: 'X'
            })
        );
        assert_eq!(
            Vin::parse("5YJ3E1EA7KF317000"),
            Err(VinError::CheckDigitMismatch {
                expected: '2',
                found: '7'
            })
        );
    }

    #[test]
    fn russian_european_and_asian_vins_are_not_check_digit_verified() {
        assert!(Vin::parse("XTA210990Y2766389").is_ok()); // Lada
        assert!(Vin::parse("WVWZZZ1JZ3W386752").is_ok()); // Volkswagen: 'Z' at position 9
        // A Japanese VIN whose ninth character would fail the North American check.
        assert!(Vin::parse("JHMCM56557C404454").is_ok());
    }

    #[test]
    fn input_is_trimmed_and_upper_cased() {
        let vin = Vin::parse("  xta210990y2766389\n").unwrap();
        assert_eq!(vin.to_string(), "XTA210990Y2766389");
    }

    #[test]
    fn a_vin_of_the_wrong_length_is_refused_with_a_readable_message() {
        let error = Vin::parse("XTA210990Y276638").unwrap_err();
        assert_eq!(error, VinError::WrongLength { length: 16 });
        assert_eq!(error.to_string(), "VIN must be 17 characters, got 16");
        assert_eq!(Vin::parse(""), Err(VinError::WrongLength { length: 0 }));
    }

    #[test]
    fn the_letters_i_o_and_q_are_refused_with_their_position() {
        assert_eq!(
            Vin::parse("XTA21099OY2766389"),
            Err(VinError::InvalidCharacter {
                character: 'O',
                position: 9
            })
        );
        assert_eq!(
            Vin::parse("ITA210990Y2766389"),
            Err(VinError::InvalidCharacter {
                character: 'I',
                position: 1
            })
        );
        assert_eq!(
            Vin::parse("XTA210990Y276638Ё"),
            Err(VinError::InvalidCharacter {
                character: 'Ё',
                position: 17
            })
        );
    }

    #[test]
    fn a_vin_serializes_as_a_plain_string_and_is_validated_when_read() {
        let vin = Vin::parse("1M8GDM9AXKP042788").unwrap();
        assert_eq!(
            serde_json::to_string(&vin).unwrap(),
            "\"1M8GDM9AXKP042788\""
        );
        assert_eq!(
            serde_json::from_str::<Vin>("\"1M8GDM9AXKP042788\"").unwrap(),
            vin
        );
        assert!(serde_json::from_str::<Vin>("\"1M8GDM9AXKP042789\"").is_err());
    }

    const VIN_CHARACTERS: &str = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ";

    proptest! {
        #[test]
        fn every_vin_accepted_parses_back_to_itself(vin in "[0-9A-HJ-NPR-Z]{17}") {
            if let Ok(parsed) = Vin::parse(&vin) {
                prop_assert_eq!(parsed.as_str(), vin.as_str());
                prop_assert_eq!(Vin::parse(parsed.as_str()), Ok(parsed.clone()));
            }
        }

        #[test]
        fn non_north_american_vins_are_accepted_whatever_their_ninth_character(
            rest in "[0-9A-HJ-NPR-Z]{16}",
            first in "[6-9A-HJ-NPR-Z]",
        ) {
            let vin = format!("{first}{rest}");
            prop_assert!(Vin::parse(&vin).is_ok(), "{} was refused", vin);
        }

        #[test]
        fn exactly_one_ninth_character_makes_a_north_american_vin_valid(
            head in "[1-5][0-9A-HJ-NPR-Z]{7}",
            tail in "[0-9A-HJ-NPR-Z]{8}",
        ) {
            let valid = VIN_CHARACTERS
                .chars()
                .filter(|ninth| Vin::parse(&format!("{head}{ninth}{tail}")).is_ok())
                .count();
            prop_assert_eq!(valid, 1);
        }
    }
}
