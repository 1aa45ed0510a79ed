use super::*;

#[test]
fn template_values_survive_the_wire() {
    let mut p = BTreeMap::new();
    p.insert("a".to_string(), Value::Int(3));
    p.insert("b".to_string(), Value::Float(2.0));
    p.insert(
        "c".to_string(),
        Value::Array(vec![Value::Str("x".into()), Value::Bool(true)]),
    );
    assert_eq!(params_from_json(&params_to_json(&p)).unwrap(), p);
}
