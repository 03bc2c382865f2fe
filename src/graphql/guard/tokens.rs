//! A lexical token count of a query text, taken before the parser runs.
//!
//! The parser builds a tree of every name and value it reads, a few hundred bytes per token
//! (and the cost and validation walks then visit all of it): a 400 KB document of 200,000 fields
//! would take tens of megabytes and as many milliseconds before any limit could look at it.
//! Counting tokens is a single pass over the bytes with no allocation, and it stops as soon as
//! the limit is passed.
//!
//! The count follows the GraphQL lexical grammar closely enough for a limit: whitespace, commas,
//! comments and a byte-order mark are ignored; a name, a number, a string (block strings
//! included) and `...` are one token each; any other byte is one token (a punctuator, or garbage
//! the parser will refuse anyway).

/// Tokens in `text`, or `limit + 1` as soon as there are more than `limit`.
pub fn count(text: &str, limit: usize) -> usize {
    let bytes = text.as_bytes();
    let at = |i: usize| bytes.get(i).copied();
    let starts = |i: usize, prefix: &[u8]| bytes.get(i..).is_some_and(|rest| rest.starts_with(prefix));
    let mut tokens = 0;
    let mut i = 0;
    while i < bytes.len() {
        if tokens > limit {
            return tokens;
        }
        let byte = bytes[i];
        match byte {
            b' ' | b'\t' | b'\n' | b'\r' | b',' => i += 1,
            0xEF if starts(i, b"\xEF\xBB\xBF") => i += 3,
            b'#' => {
                while at(i).is_some_and(|b| b != b'\n' && b != b'\r') {
                    i += 1;
                }
            }
            b'"' if starts(i, b"\"\"\"") => {
                tokens += 1;
                i += 3;
                while i < bytes.len() {
                    if starts(i, b"\\\"\"\"") {
                        i += 4;
                    } else if starts(i, b"\"\"\"") {
                        i += 3;
                        break;
                    } else {
                        i += 1;
                    }
                }
            }
            b'"' => {
                tokens += 1;
                i += 1;
                while let Some(b) = at(i) {
                    match b {
                        b'\\' => i += 2,
                        b'"' => {
                            i += 1;
                            break;
                        }
                        // An unterminated string: the parser reports it.
                        b'\n' | b'\r' => break,
                        _ => i += 1,
                    }
                }
            }
            b'.' if starts(i, b"...") => {
                tokens += 1;
                i += 3;
            }
            b'_' | b'A'..=b'Z' | b'a'..=b'z' => {
                tokens += 1;
                while at(i).is_some_and(|b| b == b'_' || b.is_ascii_alphanumeric()) {
                    i += 1;
                }
            }
            b'-' | b'0'..=b'9' => {
                tokens += 1;
                i += 1;
                while at(i).is_some_and(|b| matches!(b, b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')) {
                    i += 1;
                }
            }
            _ => {
                tokens += 1;
                i += 1;
            }
        }
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::count;

    #[test]
    fn names_values_and_punctuation_are_tokens_and_the_rest_is_not() {
        assert_eq!(count("{ a }", 100), 3);
        assert_eq!(count("query Q($n: Int = -1.5e3) { a(n: $n) @skip(if: false) }", 100), 26);
        assert_eq!(count("{ ...F } fragment F on Query { a }", 100), 11);
        assert_eq!(count("\u{feff}{ a, b,,, c } # a comment with { many } tokens\n", 100), 5);
        assert_eq!(count(r#"{ a(s: "one \" { token }", b: """block " "" \""" still""") }"#, 100), 11);
    }

    #[test]
    fn counting_stops_past_the_limit() {
        let huge = format!("{{ {} }}", "a ".repeat(1_000_000));
        assert_eq!(count(&huge, 10), 11);
    }

    #[test]
    fn malformed_text_is_counted_without_panicking() {
        for text in ["\"unterminated", "\"\"\"unterminated", "\"ends with \\", "...", "..", "é ü", "#"] {
            let _ = count(text, 100);
        }
        assert_eq!(count("\"\"\"", 100), 1);
    }
}
