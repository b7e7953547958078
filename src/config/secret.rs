//! `${ENV}` interpolation and the secret type credentials are kept in.

use secrecy::SecretString;

use super::ConfigError;

/// Looks up an environment variable; injectable so tests and `check` can supply their own.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Replaces every `${NAME}` in `value` with the variable's value.
///
/// A missing variable is an error naming the variable and the config path, so a
/// forgotten secret is caught by `switchyard check` and at start, not at the first
/// request. `$${` escapes a literal `${`.
pub fn interpolate(path: &str, value: &str, env: EnvLookup<'_>) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find('$') {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        if let Some(escaped) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = escaped;
        } else if let Some(body) = after.strip_prefix("${") {
            let Some(end) = body.find('}') else {
                return Err(ConfigError::new(path, "unterminated `${` in value"));
            };
            let name = &body[..end];
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(ConfigError::new(path, format!("`${{{name}}}` is not a valid environment variable reference")));
            }
            match env(name) {
                Some(v) => out.push_str(&v),
                None => return Err(ConfigError::new(path, format!("environment variable {name} is not set"))),
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Interpolates a credential and wraps it so it can't be printed by accident.
pub fn secret(path: &str, value: &str, env: EnvLookup<'_>) -> Result<SecretString, ConfigError> {
    let resolved = interpolate(path, value, env)?;
    if resolved.trim().is_empty() {
        return Err(ConfigError::new(path, "is empty"));
    }
    Ok(SecretString::from(resolved))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "KEY").then(|| "s3cret".to_owned())
    }

    #[test]
    fn variables_are_replaced_and_escapes_kept() {
        assert_eq!(interpolate("p", "a-${KEY}-b", &env).unwrap(), "a-s3cret-b");
        assert_eq!(interpolate("p", "$${KEY} costs $5", &env).unwrap(), "${KEY} costs $5");
    }

    #[test]
    fn a_missing_variable_is_named_with_its_path() {
        let err = interpolate("providers.openai.api_key", "${OPENAI_API_KEY}", &env).unwrap_err();
        assert_eq!(err.to_string(), "providers.openai.api_key: environment variable OPENAI_API_KEY is not set");
    }
}
