//! TRANSACTION_PAYLOAD (MySQL 8.0.20+, `binlog_transaction_compression=ON`):
//! one event holding a whole transaction's events, ZSTD-compressed. The
//! inner events have no checksums and no positions of their own; they are
//! handed on carrying the payload event's end position, so a checkpoint
//! taken after the inner XID lands on the transaction boundary.

use std::io::Read;

use crate::event::{Event, EventHeader, HEADER_LEN};
use crate::packet::Reader;
use crate::SourceError;

/// Largest decompressed transaction accepted. The header states the size,
/// so a larger one is refused before anything is decompressed; memory for
/// a transaction is held by the server too, and 1 GiB matches MySQL's
/// largest `max_allowed_packet`.
pub const MAX_UNCOMPRESSED: u64 = 1 << 30;

/// Compression algorithms of the payload header.
pub const COMPRESSION_ZSTD: u64 = 0;
pub const COMPRESSION_NONE: u64 = 255;

/// Largest ZSTD window accepted (MySQL compresses at level 3 by default,
/// a 2 MiB window; level 22 reaches 128 MiB).
const MAX_WINDOW: u64 = 128 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayloadHeader {
    pub compression: u64,
    /// Bytes of (compressed) payload after the header.
    pub payload_size: u64,
    pub uncompressed_size: u64,
    /// Where the payload starts in the event body.
    pub payload_offset: usize,
}

impl PayloadHeader {
    /// The header is a list of `type, length, value` fields, each a
    /// length-encoded integer (the value too, inside its `length` bytes),
    /// ended by a field of type 0.
    pub fn parse(body: &[u8]) -> Result<Self, SourceError> {
        let mut r = Reader::new(body);
        let (mut compression, mut payload_size, mut uncompressed_size) = (None, None, None);
        loop {
            let field = r.lenenc()?;
            if field == 0 {
                break;
            }
            let len = usize::try_from(r.lenenc()?)
                .map_err(|_| SourceError::protocol("TRANSACTION_PAYLOAD: field too long"))?;
            let raw = r.take(len)?;
            let value = Reader::new(raw).lenenc()?;
            match field {
                1 => payload_size = Some(value),
                2 => compression = Some(value),
                3 => uncompressed_size = Some(value),
                _ => {} // fields of later servers: their length lets us skip them
            }
        }
        let payload_offset = r.position();
        let header = PayloadHeader {
            compression: compression.unwrap_or(COMPRESSION_ZSTD),
            payload_size: payload_size.ok_or_else(|| {
                SourceError::protocol("TRANSACTION_PAYLOAD header has no payload size")
            })?,
            uncompressed_size: uncompressed_size.unwrap_or(0),
            payload_offset,
        };
        if header.payload_size != (body.len() - payload_offset) as u64 {
            return Err(SourceError::protocol(format!(
                "TRANSACTION_PAYLOAD header says {} payload bytes, the event has {}",
                header.payload_size,
                body.len() - payload_offset
            )));
        }
        Ok(header)
    }
}

/// The decompressed payload: the inner events, back to back.
pub fn decompress(body: &[u8]) -> Result<Vec<u8>, SourceError> {
    let h = PayloadHeader::parse(body)?;
    let payload = &body[h.payload_offset..];
    if h.uncompressed_size > MAX_UNCOMPRESSED {
        return Err(SourceError::protocol(format!(
            "compressed transaction of {} bytes uncompressed exceeds sluice's limit of {MAX_UNCOMPRESSED} bytes",
            h.uncompressed_size
        )));
    }
    let out = match h.compression {
        COMPRESSION_NONE => payload.to_vec(),
        COMPRESSION_ZSTD => {
            let mut dec = ruzstd::decoding::StreamingDecoder::new_with_max_window_size(payload, MAX_WINDOW)
                .map_err(|e| SourceError::protocol(format!("TRANSACTION_PAYLOAD: bad ZSTD frame: {e}")))?;
            // The header's size bounds what is read (one byte more to
            // notice a payload that decompresses to more than it said).
            let mut out = Vec::with_capacity(h.uncompressed_size.min(1 << 20) as usize);
            (&mut dec)
                .take(h.uncompressed_size + 1)
                .read_to_end(&mut out)
                .map_err(|e| SourceError::protocol(format!("TRANSACTION_PAYLOAD: ZSTD data corrupt: {e}")))?;
            out
        }
        other => {
            return Err(SourceError::protocol(format!(
                "TRANSACTION_PAYLOAD compressed with algorithm {other}, which sluice does not know (ZSTD is 0)"
            )))
        }
    };
    if out.len() as u64 != h.uncompressed_size {
        return Err(SourceError::protocol(format!(
            "TRANSACTION_PAYLOAD decompressed to {} bytes, its header says {}",
            out.len(),
            h.uncompressed_size
        )));
    }
    Ok(out)
}

/// The events inside a TRANSACTION_PAYLOAD event, each carrying the outer
/// event's end position (`log_pos`) instead of its own 0.
pub fn inner_events(outer: &Event) -> Result<Vec<Event>, SourceError> {
    let data = decompress(&outer.body)?;
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < data.len() {
        let rest = &data[pos..];
        if rest.len() < HEADER_LEN {
            return Err(SourceError::protocol(format!(
                "TRANSACTION_PAYLOAD: {} stray bytes after the last inner event",
                rest.len()
            )));
        }
        let mut header = EventHeader::parse(rest)?;
        let size = header.event_size as usize;
        if size < HEADER_LEN || size > rest.len() {
            return Err(SourceError::protocol(format!(
                "TRANSACTION_PAYLOAD: inner event of {size} bytes at {pos} does not fit the {} bytes left",
                rest.len()
            )));
        }
        header.log_pos = outer.header.log_pos;
        out.push(Event {
            header,
            body: rest[HEADER_LEN..size].to_vec(),
        });
        pos += size;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(out: &mut Vec<u8>, t: u8, value: &[u8]) {
        out.push(t);
        out.push(value.len() as u8);
        out.extend_from_slice(value);
    }

    #[test]
    fn header_values_are_length_encoded_inside_their_fields() {
        let mut b = Vec::new();
        field(&mut b, 2, &[0]);
        field(&mut b, 3, &[0xFC, 0xE7, 0x04]); // 1255
        field(&mut b, 1, &[3]);
        b.push(0);
        b.extend_from_slice(&[9, 9, 9]);
        let h = PayloadHeader::parse(&b).unwrap();
        assert_eq!(
            (h.compression, h.payload_size, h.uncompressed_size),
            (0, 3, 1255)
        );
        assert_eq!(h.payload_offset, b.len() - 3);
        b.push(9);
        assert!(PayloadHeader::parse(&b).is_err(), "size mismatch");
    }

    #[test]
    fn uncompressed_payload_yields_inner_events_at_the_outer_position() {
        let inner = Event::new(crate::event::types::XID, 5, 0, 7u64.to_le_bytes().to_vec());
        let mut raw = Vec::new();
        raw.extend_from_slice(&inner.header.timestamp.to_le_bytes());
        raw.push(inner.header.event_type);
        raw.extend_from_slice(&inner.header.server_id.to_le_bytes());
        raw.extend_from_slice(&inner.header.event_size.to_le_bytes());
        raw.extend_from_slice(&0u32.to_le_bytes());
        raw.extend_from_slice(&0u16.to_le_bytes());
        raw.extend_from_slice(&inner.body);
        let mut b = Vec::new();
        field(&mut b, 2, &[0xFC, 0xFF, 0x00]); // NONE = 255
        field(&mut b, 3, &[raw.len() as u8]);
        field(&mut b, 1, &[raw.len() as u8]);
        b.push(0);
        b.extend_from_slice(&raw);
        let outer = Event::new(crate::event::types::TRANSACTION_PAYLOAD, 5, 900, b);
        let evs = inner_events(&outer).unwrap();
        assert_eq!(evs.len(), 1);
        assert_eq!(evs[0].header.log_pos, 900);
        assert_eq!(evs[0].body, inner.body);
        let mut cut = outer.clone();
        cut.body.truncate(cut.body.len() - 1);
        assert!(inner_events(&cut).is_err());
    }

    #[test]
    fn oversized_claims_are_refused_before_decompressing() {
        let mut b = Vec::new();
        field(&mut b, 2, &[0]);
        field(&mut b, 3, &[0xFE, 0, 0, 0, 0, 1, 0, 0, 0]); // 4 GiB
        field(&mut b, 1, &[1]);
        b.push(0);
        b.push(0x28);
        let err = decompress(&b).unwrap_err().to_string();
        assert!(err.contains("exceeds sluice's limit"), "{err}");
    }
}
