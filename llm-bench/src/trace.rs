//! Reading a trace in the Mooncake format: one JSON object per line with `timestamp` (ms),
//! `input_length` and `output_length` (tokens) and `hash_ids` (the prompt as 512-token blocks;
//! equal ids mean the same block after the same prefix).

use std::path::Path;

/// Tokens per block of `hash_ids`.
pub const TRACE_BLOCK_TOKENS: u32 = 512;

/// One trace line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceRequest {
    /// Arrival time in milliseconds from the start of the trace.
    pub timestamp_ms: u64,
    /// Prompt length in tokens.
    pub input_length: u32,
    /// Completion length in tokens.
    pub output_length: u32,
    /// The prompt's blocks.
    pub hash_ids: Vec<u64>,
}

fn field_u64(value: &serde_json::Value, name: &str, line: usize) -> Result<u64, String> {
    value
        .get(name)
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| format!("line {line}: {name}: expected a non-negative integer"))
}

fn field_u32(value: &serde_json::Value, name: &str, line: usize) -> Result<u32, String> {
    u32::try_from(field_u64(value, name, line)?)
        .map_err(|_| format!("line {line}: {name}: larger than 2^32"))
}

/// Parses trace text; blank lines are skipped. Requests are returned sorted by timestamp
/// (stable: equal timestamps keep file order).
///
/// # Errors
/// A line that is not a JSON object with the four fields, naming the line.
pub fn parse(text: &str) -> Result<Vec<TraceRequest>, String> {
    let mut requests = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|error| format!("line {number}: {error}"))?;
        let hash_ids = value
            .get("hash_ids")
            .and_then(serde_json::Value::as_array)
            .ok_or_else(|| format!("line {number}: hash_ids: expected an array"))?
            .iter()
            .map(|id| {
                id.as_u64()
                    .ok_or_else(|| format!("line {number}: hash_ids: expected integers"))
            })
            .collect::<Result<Vec<u64>, String>>()?;
        if hash_ids.is_empty() {
            return Err(format!("line {number}: hash_ids: empty"));
        }
        requests.push(TraceRequest {
            timestamp_ms: field_u64(&value, "timestamp", number)?,
            input_length: field_u32(&value, "input_length", number)?,
            output_length: field_u32(&value, "output_length", number)?,
            hash_ids,
        });
    }
    requests.sort_by_key(|request| request.timestamp_ms);
    Ok(requests)
}

/// Reads and parses the trace file at `path`.
///
/// # Errors
/// The file cannot be read, or [`parse`] fails (the message names the file).
pub fn load(path: &Path) -> Result<Vec<TraceRequest>, String> {
    let text =
        std::fs::read_to_string(path).map_err(|error| format!("{}: {error}", path.display()))?;
    parse(&text).map_err(|error| format!("{}: {error}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_sorts_by_time() {
        let text = "{\"timestamp\": 5, \"input_length\": 600, \"output_length\": 3, \"hash_ids\": [0, 2]}\n\n\
                    {\"timestamp\": 1, \"input_length\": 10, \"output_length\": 1, \"hash_ids\": [0]}\n";
        let requests = parse(text).unwrap();
        assert_eq!(requests.len(), 2);
        assert_eq!(requests[0].timestamp_ms, 1);
        assert_eq!(requests[1].hash_ids, vec![0, 2]);
    }

    #[test]
    fn bad_lines_are_named() {
        assert!(parse("{\"timestamp\": 1}").unwrap_err().contains("line 1"));
        let error =
            parse("\n{\"timestamp\":1,\"input_length\":1,\"output_length\":1,\"hash_ids\":[]}")
                .unwrap_err();
        assert!(
            error.contains("line 2") && error.contains("empty"),
            "{error}"
        );
        assert!(parse("not json").is_err());
    }
}
