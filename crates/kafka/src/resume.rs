//! [`ResumePoint`]: what a partition's next owner may skip, carried in the commit's metadata.
//!
//! Kafka keeps one position per partition, and ours never moves over an unfinished message. Past
//! that position, though, most messages are usually finished already (they overtook a slow
//! one). A commit records them in its metadata string, as the offsets past the position that
//! were *not* finished plus how far the partition had been read; whoever owns the partition
//! next (this engine after a restart, another instance after a rebalance) reads the metadata
//! with the committed offset and skips the messages it says are done. A client that does not
//! know the format (the original Python engine, kafka-consumer-groups) ignores the metadata and
//! redoes from the position: more duplicates, never a loss.
//!
//! The format is `mn1:SPAN:REDO`, where SPAN is how many offsets past the position were read
//! and REDO lists the unfinished ones among them as distances from the position, ascending,
//! comma-separated, with `A-B` for a run. Brokers cap metadata (`offset.metadata.max.bytes`,
//! 4096 by default), so an encoding that would be longer is cut: the span then ends at the
//! first unfinished offset left out, and everything from there on is redone.

/// The prefix that marks our metadata; anything else is ignored.
const PREFIX: &str = "mn1:";

/// Longest metadata written, well under the brokers' default limit of 4096 bytes.
pub const MAX_METADATA_LEN: usize = 2048;

/// What is done past a committed position: every offset in `position..read_to` except `redo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumePoint {
    /// The committed position the point belongs to.
    pub position: i64,
    /// One past the last offset read.
    read_to: i64,
    /// Offsets in `position..read_to` that were not finished, ascending.
    redo: Vec<i64>,
}

impl ResumePoint {
    /// The point of a partition whose position is `position`, that was read up to `read_to`
    /// (exclusive), and of which `unfinished` are not finished (offsets outside
    /// `position..read_to` are ignored).
    pub fn new(position: i64, read_to: i64, unfinished: impl IntoIterator<Item = i64>) -> Self {
        let read_to = read_to.max(position);
        let mut redo: Vec<i64> = unfinished
            .into_iter()
            .filter(|o| (position..read_to).contains(o))
            .collect();
        redo.sort_unstable();
        redo.dedup();
        ResumePoint {
            position,
            read_to,
            redo,
        }
    }

    /// Whether `offset` was finished by whoever wrote this point.
    pub fn is_done(&self, offset: i64) -> bool {
        (self.position..self.read_to).contains(&offset) && self.redo.binary_search(&offset).is_err()
    }

    /// Offsets past the position the point says are done.
    pub fn done_count(&self) -> u64 {
        (self.read_to - self.position) as u64 - self.redo.len() as u64
    }

    /// The metadata string, at most `max_len` bytes (cut as the module explains).
    pub fn encode(&self, max_len: usize) -> String {
        self.encode_cut(max_len).0
    }

    /// [`encode`](Self::encode), and the offset the encoding stops at: it says nothing of
    /// offsets from there on (`read_to` unless the encoding had to be cut).
    pub fn encode_cut(&self, max_len: usize) -> (String, i64) {
        let mut out = String::from(PREFIX);
        let mut runs = String::new();
        let mut span = self.read_to - self.position;
        let mut i = 0;
        while i < self.redo.len() {
            let start = self.redo[i];
            let mut end = start;
            while i + 1 < self.redo.len() && self.redo[i + 1] == end + 1 {
                i += 1;
                end += 1;
            }
            let run = if start == end {
                format!("{}", start - self.position)
            } else {
                format!("{}-{}", start - self.position, end - self.position)
            };
            // Room for the prefix, the span (at most as long as it is now), the separators.
            let span_len = span.to_string().len();
            if PREFIX.len() + span_len + 1 + runs.len() + 1 + run.len() > max_len {
                // Cut: everything from this unfinished offset on is redone.
                span = start - self.position;
                break;
            }
            if !runs.is_empty() {
                runs.push(',');
            }
            runs.push_str(&run);
            i += 1;
        }
        out.push_str(&span.to_string());
        out.push(':');
        out.push_str(&runs);
        (out, self.position + span)
    }

    /// Reads metadata written by [`encode`](Self::encode) for a commit at `position`; `None`
    /// for anything else (no metadata, another client's, damaged).
    pub fn decode(position: i64, metadata: &str) -> Option<Self> {
        let rest = metadata.strip_prefix(PREFIX)?;
        let (span, runs) = rest.split_once(':')?;
        let span: i64 = span.parse().ok().filter(|s| *s >= 0)?;
        let read_to = position.checked_add(span)?;
        let mut redo = Vec::new();
        let mut last = -1i64;
        for run in runs.split(',').filter(|r| !r.is_empty()) {
            let (a, b) = match run.split_once('-') {
                Some((a, b)) => (a.parse::<i64>().ok()?, b.parse::<i64>().ok()?),
                None => {
                    let a = run.parse::<i64>().ok()?;
                    (a, a)
                }
            };
            if a <= last || b < a || b >= span {
                return None;
            }
            // A damaged run must not make us hold millions of offsets.
            if redo.len() as i64 + (b - a + 1) > 1_000_000 {
                return None;
            }
            redo.extend((a..=b).map(|d| position + d));
            last = b;
        }
        Some(ResumePoint {
            position,
            read_to,
            redo,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_runs_and_single_offsets() {
        let point = ResumePoint::new(1000, 1100, [1000, 1001, 1002, 1050, 1090, 1091]);
        let text = point.encode(MAX_METADATA_LEN);
        assert_eq!(text, "mn1:100:0-2,50,90-91");
        assert_eq!(ResumePoint::decode(1000, &text), Some(point.clone()));
        assert_eq!(point.done_count(), 94);
        assert!(point.is_done(1003));
        assert!(!point.is_done(1050));
        assert!(!point.is_done(1100), "past what was read");
        assert!(!point.is_done(999), "before the position");
    }

    #[test]
    fn nothing_unfinished_means_everything_read_is_done() {
        let point = ResumePoint::new(7, 7, []);
        assert_eq!(point.encode(MAX_METADATA_LEN), "mn1:0:");
        assert_eq!(
            ResumePoint::decode(7, "mn1:0:").map(|p| p.done_count()),
            Some(0)
        );
    }

    #[test]
    fn a_long_encoding_is_cut_so_that_the_rest_is_redone() {
        // Every other offset unfinished: no runs to merge.
        let unfinished: Vec<i64> = (0..2000).map(|i| i * 2).collect();
        let point = ResumePoint::new(0, 4000, unfinished);
        let (text, covers_to) = point.encode_cut(100);
        assert!(text.len() <= 100, "{} bytes", text.len());
        assert!(covers_to < 4000);
        let cut = ResumePoint::decode(0, &text).expect("decodes");
        // What the cut point calls done was done; nothing unfinished is called done.
        for offset in 0..4000 {
            if cut.is_done(offset) {
                assert!(point.is_done(offset), "{offset}");
            }
        }
        assert!(cut.done_count() > 0);
        assert!(!cut.is_done(covers_to), "the cut says nothing past it");
    }

    #[test]
    fn foreign_or_damaged_metadata_is_ignored() {
        for text in [
            "",
            "some other client's note",
            "mn1:",
            "mn1:x:",
            "mn1:-5:",
            "mn1:10:5,3",
            "mn1:10:3-2",
            "mn1:10:12",
            "mn1:10:a",
            "mn1:99999999999999999999:",
            "mn1:9000000000000000000:0-8999999999999999999",
        ] {
            assert_eq!(ResumePoint::decode(5, text), None, "{text:?}");
        }
    }
}
