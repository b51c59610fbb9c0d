//! The configuration users write, and its validation into compiled rules.
//!
//! ```json
//! {
//!   "rules": [
//!     {"columns": ["*email*"], "action": "mask"},
//!     {"detector": "card", "action": "hash"},
//!     {"columns": ["ssn"], "action": "drop"}
//!   ],
//!   "hash_key": "a long random secret",
//!   "tables": ["public.*"],
//!   "name_hints": ["ssn", "*passport*", "dob"]
//! }
//! ```
//!
//! Every problem is reported at once, each with the path of its field.

use serde::Deserialize;
use wildmatch::WildMatch;

use crate::action::Hasher;

/// The plugin's configuration. `{}` masks, in every table, every text
/// value a detector recognises, in the before and after images.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PiiMaskConfig {
    /// Masking rules, tried in order for each column of the before and
    /// after images: the first rule that matches a column decides what
    /// becomes of it. Leave out for the default, one rule
    /// `{"detector": "any", "action": "mask"}`.
    ///
    /// Kept as raw JSON here so that each rule is parsed on its own and an
    /// error can say which rule it is about.
    #[serde(default)]
    pub rules: Option<Vec<serde_json::Value>>,

    /// The secret key of the `hash` action (HMAC-SHA256 over the value's
    /// UTF-8 bytes). Required when any rule hashes. Use a long random
    /// secret: anyone who knows it can hash candidate values and so
    /// reverse low-entropy data such as SSNs.
    #[serde(default)]
    pub hash_key: Option<String>,

    /// Only events of tables matching one of these globs are masked
    /// (`*` any run of characters, `?` one character, case-insensitive),
    /// matched against `schema.table` (or `table` when the source has no
    /// schema). Leave out to mask every table.
    #[serde(default)]
    pub tables: Option<Vec<String>>,

    /// Column names (case-insensitive globs) whose values are masked
    /// whatever they look like, after the rules (a rule that names the
    /// column decides first) and before the default detectors: a value in
    /// a column named `ssn` is sensitive even when no detector recognises
    /// its shape. Leave out for [`DEFAULT_NAME_HINTS`]; `[]` turns hints
    /// off. Hints never touch the key image.
    #[serde(default)]
    pub name_hints: Option<Vec<String>>,
}

/// The column names masked whatever their values look like, unless the
/// configuration says otherwise: identity, tax and travel documents,
/// dates of birth and bank accounts. Phone columns are not among them (a
/// column called `phone` often holds `n/a` or an extension); add `phone`
/// to mask every bare-digit phone number, where the phone detector takes
/// only the shapes that are nearly always phones.
pub const DEFAULT_NAME_HINTS: &[&str] = &[
    "ssn",
    "social_security*",
    "tax_id",
    "taxid",
    "*_tax_id",
    "tin",
    "itin",
    "national_id",
    "national_id_*",
    "passport",
    "passport_*",
    "*_passport",
    "driver_licen?e*",
    "drivers_licen?e*",
    "dob",
    "date_of_birth",
    "birth_date",
    "birthdate",
    "iban",
];

/// One masking rule.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Column-name globs (`*` any run of characters, `?` one character),
    /// case-insensitive. A rule naming columns also applies to the key
    /// image; a rule with only a detector never does.
    #[serde(default)]
    pub columns: Option<Vec<String>>,

    /// The kind of value the rule applies to: `email`, `phone`, `ssn`
    /// (SSNs and ITINs), `card`, `iban`, `ip`, or `any` of them. Only text
    /// values are examined. With `columns` too, both must match.
    #[serde(default)]
    pub detector: Option<DetectorName>,

    /// What to do with a matching value: `mask`, `hash`, `redact` (null) or
    /// `drop` (remove the column).
    pub action: ActionName,

    /// For `mask` only: how many trailing characters stay in clear (digits,
    /// for card numbers, phone numbers and SSNs, whose separators are kept).
    /// Defaults to 4 for those and 0 for other text. A value no longer
    /// than this is masked whole. Emails always keep their first character
    /// and their domain.
    #[serde(default)]
    pub keep_last: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DetectorName {
    Email,
    Phone,
    Ssn,
    Card,
    Iban,
    Ip,
    Any,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionName {
    Mask,
    Hash,
    Redact,
    Drop,
}

/// What a matching rule does to a value.
#[derive(Debug)]
pub enum Action {
    /// Keep the value's shape, hide its content.
    Mask { keep_last: Option<usize> },
    /// Keyed HMAC-SHA256, lower-case hex. Holding the keyed state here
    /// makes a hash rule without a key unrepresentable.
    Hash(Hasher),
    /// Null.
    Redact,
    /// Remove the column from the image.
    Drop,
}

/// A validated rule with its globs compiled.
#[derive(Debug)]
pub struct Rule {
    /// None: the rule matches every column of the before and after images
    /// (and none of the key image).
    pub columns: Option<Vec<WildMatch>>,
    pub detector: Option<DetectorName>,
    pub action: Action,
    /// Whether the rule may touch the key image: only rules the user wrote
    /// with `columns` do.
    pub key_image: bool,
    /// A name-hint rule: it leaves booleans alone (`phone_verified` is no
    /// phone number), masks text and redacts other values.
    pub hint: bool,
}

impl Rule {
    /// Whether the rule's column globs accept column `name` of an image
    /// (`key_image`: the key image, which only rules naming columns touch).
    pub fn names(&self, name: &str, key_image: bool) -> bool {
        if key_image && !self.key_image {
            return false;
        }
        match &self.columns {
            Some(globs) => globs.iter().any(|g| g.matches(name)),
            None => true,
        }
    }
}

/// The configuration, validated.
pub struct Settings {
    pub rules: Vec<Rule>,
    pub tables: Option<Vec<WildMatch>>,
}

impl PiiMaskConfig {
    /// Validates and compiles the configuration, reporting every problem.
    pub fn validate(self) -> Result<Settings, String> {
        let mut errors = Vec::new();

        let key_given = self.hash_key.is_some();
        let hasher = match self.hash_key.as_deref() {
            Some("") => {
                errors.push("hash_key: must not be empty".to_owned());
                None
            }
            Some(key) => Some(Hasher::new(key)),
            None => None,
        };

        let tables = match self.tables {
            None => None,
            Some(t) if t.is_empty() => {
                errors.push(
                    "tables: an empty list matches no table; leave `tables` out to mask every table"
                        .to_owned(),
                );
                None
            }
            Some(t) => Some(
                t.iter()
                    .map(|p| WildMatch::new_case_insensitive(p))
                    .collect(),
            ),
        };

        let hints: Vec<String> = match self.name_hints {
            None => DEFAULT_NAME_HINTS.iter().map(|h| (*h).to_owned()).collect(),
            Some(h) => {
                for (i, p) in h.iter().enumerate() {
                    if p.is_empty() {
                        errors.push(format!(
                            "name_hints[{i}]: an empty pattern matches no column"
                        ));
                    }
                }
                h
            }
        };
        let hint_rule = (!hints.is_empty()).then(|| Rule {
            columns: Some(
                hints
                    .iter()
                    .map(|p| WildMatch::new_case_insensitive(p))
                    .collect(),
            ),
            detector: None,
            action: Action::Mask { keep_last: None },
            key_image: false,
            hint: true,
        });

        let defaults = self.rules.is_none();
        let mut rules = match self.rules {
            None => Vec::new(),
            Some(raw) if raw.is_empty() => {
                errors.push(
                    "rules: an empty list masks nothing; leave `rules` out for the default detectors"
                        .to_owned(),
                );
                Vec::new()
            }
            Some(raw) => raw
                .into_iter()
                .enumerate()
                .filter_map(|(i, doc)| {
                    compile_rule(i, doc, key_given, hasher.as_ref(), &mut errors)
                })
                .collect(),
        };

        // The user's rules first, then the name hints, then (without
        // rules) every detector.
        rules.extend(hint_rule);
        if defaults {
            rules.push(Rule {
                columns: None,
                detector: Some(DetectorName::Any),
                action: Action::Mask { keep_last: None },
                key_image: false,
                hint: false,
            });
        }

        if errors.is_empty() {
            Ok(Settings { rules, tables })
        } else {
            Err(format!("invalid plugin config: {}", errors.join("; ")))
        }
    }
}

fn compile_rule(
    i: usize,
    doc: serde_json::Value,
    key_given: bool,
    hasher: Option<&Hasher>,
    errors: &mut Vec<String>,
) -> Option<Rule> {
    let rule: RuleConfig = match serde_json::from_value(doc) {
        Ok(r) => r,
        Err(e) => {
            errors.push(format!("rules[{i}]: {e}"));
            return None;
        }
    };
    let before = errors.len();
    match &rule.columns {
        Some(c) if c.is_empty() => {
            errors.push(format!(
                "rules[{i}].columns: an empty list matches no column"
            ));
        }
        Some(c) => {
            for (j, p) in c.iter().enumerate() {
                if p.is_empty() {
                    errors.push(format!(
                        "rules[{i}].columns[{j}]: an empty pattern matches no column"
                    ));
                }
            }
        }
        None if rule.detector.is_none() => {
            errors.push(format!("rules[{i}]: give `columns`, `detector` or both"));
        }
        None => {}
    }
    if rule.keep_last.is_some() && rule.action != ActionName::Mask {
        errors.push(format!(
            "rules[{i}].keep_last: only the `mask` action takes `keep_last`"
        ));
    }
    if rule.action == ActionName::Hash && !key_given {
        errors.push(format!(
            "rules[{i}].action: `hash` needs `hash_key` (the HMAC secret) at the top level of the config"
        ));
    }
    if errors.len() > before {
        return None;
    }
    let names_columns = rule.columns.is_some();
    Some(Rule {
        columns: rule.columns.map(|c| {
            c.iter()
                .map(|p| WildMatch::new_case_insensitive(p))
                .collect()
        }),
        detector: rule.detector,
        key_image: names_columns,
        hint: false,
        action: match rule.action {
            ActionName::Mask => Action::Mask {
                keep_last: rule.keep_last,
            },
            // None only when `hash_key` is empty, which is reported above.
            ActionName::Hash => Action::Hash(hasher?.clone()),
            ActionName::Redact => Action::Redact,
            ActionName::Drop => Action::Drop,
        },
    })
}
