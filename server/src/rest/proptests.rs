//! Property tests of the parser (filled in below).
