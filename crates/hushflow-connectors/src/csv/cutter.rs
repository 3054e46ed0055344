//! Finds record boundaries in CSV bytes without decoding them: the reader thread's only work
//! besides reading, so that decoding can run on the workers.

/// Finds where records end in CSV bytes without decoding them. It follows csv-core's dialect (the
/// csv crate's default, RFC 4180 quoting): a quote opens a quoted field only at the field's start,
/// `""` inside one is a quote, and a record ends at a line break (LF, CRLF or a lone CR) outside
/// quotes. Memchr jumps from one quote or line break to the next, so a scan runs at GB/s.
#[derive(Debug)]
pub(super) struct Cutter {
    delimiter: u8,
    /// Where scanning resumes.
    pos: usize,
    pub(super) quoted: bool,
    records: usize,
    /// LFs before `pos`.
    lines: u64,
    /// Just past the last record end found, and the LFs before it.
    pub(super) cut: usize,
    pub(super) cut_lines: u64,
}

impl Cutter {
    pub(super) fn new(delimiter: u8) -> Self {
        Cutter {
            delimiter,
            pos: 0,
            quoted: false,
            records: 0,
            lines: 0,
            cut: 0,
            cut_lines: 0,
        }
    }

    /// Scans `buf` on from where the last call stopped; true once `max` records end in it.
    /// False means more bytes are needed (or, at the end of the input, that all of it is left).
    pub(super) fn scan(&mut self, buf: &[u8], max: usize) -> bool {
        while self.records < max {
            let Some(rest) = buf.get(self.pos..).filter(|r| !r.is_empty()) else {
                return false;
            };
            if self.quoted {
                let Some(at) = memchr::memchr2(b'"', b'\n', rest).map(|i| self.pos + i) else {
                    self.pos = buf.len();
                    return false;
                };
                if buf[at] == b'\n' {
                    self.lines += 1;
                    self.pos = at + 1;
                    continue;
                }
                match buf.get(at + 1) {
                    // Whether this quote ends the field or escapes the next one is not known yet.
                    None => {
                        self.pos = at;
                        return false;
                    }
                    Some(b'"') => self.pos = at + 2,
                    Some(_) => {
                        self.quoted = false;
                        self.pos = at + 1;
                    }
                }
            } else {
                let Some(at) = memchr::memchr3(b'"', b'\n', b'\r', rest).map(|i| self.pos + i)
                else {
                    self.pos = buf.len();
                    return false;
                };
                match buf[at] {
                    b'"' => {
                        let previous = at.checked_sub(1).map(|i| buf[i]);
                        self.quoted = matches!(previous, None | Some(b'\n' | b'\r'))
                            || previous == Some(self.delimiter);
                        self.pos = at + 1;
                    }
                    b'\n' => {
                        self.lines += 1;
                        self.end_record(at + 1);
                    }
                    _ => match buf.get(at + 1) {
                        // A CR at the end of what was read may be the first half of a CRLF.
                        None => {
                            self.pos = at;
                            return false;
                        }
                        Some(b'\n') => self.pos = at + 1,
                        Some(_) => self.end_record(at + 1),
                    },
                }
            }
        }
        true
    }

    /// Called when no more bytes will come: a quote left undecided on the last byte closes.
    pub(super) fn at_end(&mut self, buf: &[u8]) {
        if self.quoted && self.pos + 1 == buf.len() && buf.last() == Some(&b'"') {
            self.quoted = false;
        }
    }

    fn end_record(&mut self, end: usize) {
        self.records += 1;
        self.cut = end;
        self.cut_lines = self.lines;
        self.pos = end;
    }

    /// Takes the cut found by [`Cutter::scan`]: the end of the chunk and the LFs in it. Scanning
    /// resumes on the bytes after it, which the caller moves to the front.
    pub(super) fn take_cut(&mut self) -> (usize, u64) {
        let taken = (self.cut, self.cut_lines);
        self.pos -= self.cut;
        self.lines -= self.cut_lines;
        self.records = 0;
        self.cut = 0;
        self.cut_lines = 0;
        taken
    }
}
