//! HTTP byte ranges (RFC 9110 §14) for run files: one `bytes=a-b`, `bytes=a-` or `bytes=-n`.

/// What to send for a request's `Range` header, given the file length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// The whole file with 200: no `Range`, a form this server does not serve (several
    /// ranges, another unit, bad syntax: the header is then ignored, as RFC 9110 allows), or a
    /// suffix range of an empty file (satisfiable, but there is no byte to name).
    Full,
    /// Bytes `start..=end` with 206.
    Part {
        /// First byte.
        start: u64,
        /// Last byte (inclusive).
        end: u64,
    },
    /// 416: the range starts at or after the end of the file.
    Unsatisfiable,
}

impl ByteRange {
    /// Interprets the `Range` header value `header` (if any) against a file of `len` bytes.
    pub fn parse(header: Option<&str>, len: u64) -> ByteRange {
        let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
            return ByteRange::Full;
        };
        if spec.contains(',') {
            return ByteRange::Full;
        }
        let Some((a, b)) = spec.split_once('-') else {
            return ByteRange::Full;
        };
        match (a.trim(), b.trim()) {
            ("", n) => match n.parse::<u64>() {
                Ok(0) => ByteRange::Unsatisfiable,
                Ok(_) if len == 0 => ByteRange::Full,
                Ok(n) => ByteRange::Part {
                    start: len.saturating_sub(n),
                    end: len - 1,
                },
                Err(_) => ByteRange::Full,
            },
            (a, b) => {
                let Ok(start) = a.parse::<u64>() else {
                    return ByteRange::Full;
                };
                let end = if b.is_empty() {
                    u64::MAX
                } else {
                    match b.parse::<u64>() {
                        Ok(end) if end >= start => end,
                        _ => return ByteRange::Full,
                    }
                };
                if start >= len {
                    ByteRange::Unsatisfiable
                } else {
                    ByteRange::Part {
                        start,
                        end: end.min(len - 1),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ByteRange::{self, Full, Part, Unsatisfiable};

    fn parse(h: &str, len: u64) -> ByteRange {
        ByteRange::parse(Some(h), len)
    }

    #[test]
    fn single_ranges() {
        assert_eq!(parse("bytes=0-3", 10), Part { start: 0, end: 3 });
        assert_eq!(parse("bytes=5-", 10), Part { start: 5, end: 9 });
        assert_eq!(parse("bytes=-4", 10), Part { start: 6, end: 9 });
        assert_eq!(parse("bytes=-40", 10), Part { start: 0, end: 9 });
        assert_eq!(parse("bytes=8-100", 10), Part { start: 8, end: 9 });
    }

    #[test]
    fn unsatisfiable_and_ignored_forms() {
        assert_eq!(parse("bytes=10-", 10), Unsatisfiable);
        assert_eq!(parse("bytes=0-5", 0), Unsatisfiable);
        assert_eq!(parse("bytes=-0", 10), Unsatisfiable);
        // A suffix of an empty file is the (empty) file.
        assert_eq!(parse("bytes=-4", 0), Full);
        assert_eq!(parse("bytes=3-1", 10), Full);
        assert_eq!(parse("items=0-1", 10), Full);
        assert_eq!(parse("bytes=0-1,3-4", 10), Full);
        assert_eq!(parse("bytes=x-1", 10), Full);
        assert_eq!(ByteRange::parse(None, 10), Full);
    }
}
