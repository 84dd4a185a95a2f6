//! HTTP byte ranges (RFC 9110 §14) for run files: one `bytes=a-b`, `bytes=a-` or `bytes=-n`
//! (parsed by `http_range_header`); what the server answers for each form.

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
    /// Interprets the `Range` header value `header` (if any) against a file of `len` bytes,
    /// parsed and checked by `http_range_header`.
    pub fn parse(header: Option<&str>, len: u64) -> ByteRange {
        use http_range_header::RangeUnsatisfiableError;
        let Some(value) = header else {
            return ByteRange::Full;
        };
        let ranges = http_range_header::parse_range_header(value.trim())
            .and_then(|parsed| parsed.validate(len));
        match ranges {
            Ok(ranges) => match ranges.as_slice() {
                [one] => ByteRange::Part {
                    start: *one.start(),
                    end: *one.end(),
                },
                // Several ranges, or a suffix of an empty file: the whole file.
                _ => ByteRange::Full,
            },
            Err(RangeUnsatisfiableError::Unsatisfiable) => ByteRange::Unsatisfiable,
            // Invalid or rejected forms may be ignored (RFC 9110 §14.2).
            Err(_) => ByteRange::Full,
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
        assert_eq!(parse(" bytes=2-3 ", 10), Part { start: 2, end: 3 });
        assert_eq!(ByteRange::parse(None, 10), Full);
    }
}
