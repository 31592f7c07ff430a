//! guests/rust/data-processor — the seed's JSON guest in Rust: takes a batch of records and returns
//! a structured summary, stamped with the host's clock. The same job as the C port
//! (guests/data-processor/main.c, where the input and output are described in full), with the same
//! output bytes, log line and error messages:
//!
//!   in:  {"records": [{"name": "  Alice ", "age": 30, "city": "paris"}, ...],
//!         "options": {"case": "lower"|"upper"|"none", "values": bool, "records": bool}}
//!   out: {"record_count", "numeric_fields": {f: {count, min, max, sum, mean}},
//!         "string_fields": {f: {count, distinct, values, counts}}, "ignored_values"?, "records"?,
//!         "processed_at"}
#![no_std]
#![no_main]

use aspen_jobs_guest::*;

#[derive(Clone, Copy, PartialEq)]
enum Fold {
    Lower,
    Upper,
    None,
}

struct Options {
    fold: Fold,
    values: bool,
    records: bool,
}

#[derive(Default)]
struct Field {
    name: String,
    num_count: usize,
    min: Option<Value>,
    max: Option<Value>,
    sum: f64,
    isum: i64,
    isum_inexact: bool,
    str_count: usize,
    values: Vec<Value>,
    distinct: BTreeMap<String, usize>,
    counts: Vec<(String, usize)>,
    ignored: usize,
}

fn is_space(c: u8) -> bool {
    c == b' ' || (b'\t'..=b'\r').contains(&c)
}

/// Trim, collapse whitespace runs to one space, fold case (ASCII and the Latin-1 letters).
fn normalise(s: &str, fold: Fold) -> String {
    let s = s.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(s.len());
    let mut pending_space = false;
    let mut i = 0;
    while i < s.len() {
        let mut c = s[i];
        if is_space(c) {
            pending_space = !out.is_empty(); // leading whitespace is dropped
            i += 1;
            continue;
        }
        if pending_space {
            out.push(b' ');
            pending_space = false;
        }
        if fold == Fold::Lower && c.is_ascii_uppercase() {
            c += 32;
        } else if fold == Fold::Upper && c.is_ascii_lowercase() {
            c -= 32;
        } else if c == 0xC3 && i + 1 < s.len() && fold != Fold::None {
            // Latin-1 letters in UTF-8: U+00C0..U+00DE <-> U+00E0..U+00FE, except × and ÷.
            let mut d = s[i + 1];
            if fold == Fold::Lower && (0x80..=0x9E).contains(&d) && d != 0x97 {
                d += 0x20;
            } else if fold == Fold::Upper && (0xA0..=0xBE).contains(&d) && d != 0xB7 {
                d -= 0x20;
            }
            out.push(c);
            out.push(d);
            i += 2;
            continue;
        }
        out.push(c);
        i += 1;
    }
    // Only ASCII letters and Latin-1 letters' second bytes changed: still UTF-8.
    String::from_utf8(out).unwrap_or_default()
}

fn read_options(payload: &Value) -> Result<Options, String> {
    let mut o = Options { fold: Fold::Lower, values: true, records: false };
    let opts = &payload["options"];
    if opts.is_null() {
        return Ok(o);
    }
    if !opts.is_object() {
        return Err(format!("bad input: \"options\" must be an object, got {}", opts.type_name()));
    }
    if let Some(c) = opts.get("case") {
        o.fold = match c.as_str().unwrap_or("") {
            "lower" => Fold::Lower,
            "upper" => Fold::Upper,
            "none" => Fold::None,
            _ => return Err(String::from("bad input: options.case must be \"lower\", \"upper\" or \"none\"")),
        };
    }
    if let Some(v) = opts.get("values") {
        o.values = v.as_bool().ok_or_else(|| String::from("bad input: options.values must be true or false"))?;
    }
    if let Some(r) = opts.get("records") {
        o.records = r.as_bool().ok_or_else(|| String::from("bad input: options.records must be true or false"))?;
    }
    Ok(o)
}

fn summarise(payload: &Value) -> Result<Value, String> {
    if !payload.is_object() {
        return Err(format!(
            "bad input: the payload must be a JSON object with a \"records\" array, got {}",
            payload.type_name()
        ));
    }
    let records = match payload.get("records") {
        Some(Value::Array(a)) => a,
        Some(other) => return Err(format!("bad input: \"records\" must be an array of objects ({})", other.type_name())),
        None => return Err(String::from("bad input: \"records\" must be an array of objects (it is missing)")),
    };
    let opt = read_options(payload)?;

    let mut fields: Vec<Field> = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    let mut norm_records: Vec<Value> = Vec::new();
    for (i, rec) in records.iter().enumerate() {
        let rec = match rec.as_object() {
            Some(r) => r,
            None => {
                let article = if rec.is_array() || rec.is_object() { "an" } else { "a" };
                return Err(format!("bad input: records[{}] is {} {}, not an object", i, article, rec.type_name()));
            }
        };
        let mut norm = Map::new();
        for (key, v) in rec.iter() {
            let fi = match index.get(key.as_str()) {
                Some(&fi) => fi,
                None => {
                    index.insert(key.clone(), fields.len());
                    fields.push(Field { name: key.clone(), ..Field::default() });
                    fields.len() - 1
                }
            };
            let f = &mut fields[fi];
            match v {
                Value::Number(n) => {
                    let d = n.as_f64();
                    if f.num_count == 0 || d < f.min.as_ref().and_then(Value::as_f64).unwrap_or(0.0) {
                        f.min = Some(v.clone());
                    }
                    if f.num_count == 0 || d > f.max.as_ref().and_then(Value::as_f64).unwrap_or(0.0) {
                        f.max = Some(v.clone());
                    }
                    f.num_count += 1;
                    f.sum += d;
                    match n.as_i64().and_then(|x| f.isum.checked_add(x)) {
                        Some(s) if !f.isum_inexact => f.isum = s,
                        _ => f.isum_inexact = true,
                    }
                    if opt.records {
                        norm.insert(key.clone(), v.clone());
                    }
                }
                Value::String(s) => {
                    let s = normalise(s, opt.fold);
                    f.str_count += 1;
                    if opt.values {
                        f.values.push(json!(s.clone()));
                    }
                    if opt.records {
                        norm.insert(key.clone(), json!(s.clone()));
                    }
                    match f.distinct.get(&s) {
                        Some(&k) => f.counts[k].1 += 1,
                        None => {
                            f.distinct.insert(s.clone(), f.counts.len());
                            f.counts.push((s, 1));
                        }
                    }
                }
                _ => {
                    f.ignored += 1;
                    if opt.records {
                        norm.insert(key.clone(), v.clone());
                    }
                }
            }
        }
        if opt.records {
            norm_records.push(Value::Object(norm));
        }
    }

    let mut nums = Map::new();
    let mut strs = Map::new();
    let mut ignored = Map::new();
    for f in fields {
        if f.num_count > 0 {
            let sum = if f.isum_inexact { json!(f.sum) } else { json!(f.isum) };
            nums.insert(f.name.clone(), json!({
                "count": f.num_count,
                "min": f.min,
                "max": f.max,
                "sum": sum,
                "mean": f.sum / f.num_count as f64
            }));
        }
        if f.str_count > 0 {
            let mut s = json!({ "count": f.str_count, "distinct": f.distinct.len() });
            let o = s.as_object_mut().unwrap();
            if opt.values {
                o.insert(String::from("values"), Value::Array(f.values));
            }
            let mut counts = Map::new();
            for (k, n) in f.counts {
                counts.insert(k, json!(n));
            }
            o.insert(String::from("counts"), Value::Object(counts));
            strs.insert(f.name.clone(), s);
        }
        if f.ignored > 0 {
            ignored.insert(f.name, json!(f.ignored));
        }
    }
    let (n_nums, n_strs) = (nums.len(), strs.len());
    let mut out = json!({
        "record_count": records.len(),
        "numeric_fields": nums,
        "string_fields": strs
    });
    let o = out.as_object_mut().unwrap();
    if !ignored.is_empty() {
        o.insert(String::from("ignored_values"), Value::Object(ignored));
    }
    if opt.records {
        o.insert(String::from("records"), Value::Array(norm_records));
    }
    o.insert(String::from("processed_at"), json!(hl_get_time()));
    hl_println!("data-processor: {} records, {} numeric and {} string fields", records.len(), n_nums, n_strs);
    Ok(out)
}

fn process(input: JobInput) -> JobOutput {
    match summarise(&input.payload) {
        Ok(summary) => JobOutput::success(summary),
        Err(message) => JobOutput::failure(message),
    }
}

// Automatic JSON serialization/deserialization
define_json_handler!(process);
