//! Int8 table lookup (`table_u8`): every path against the definition on odd lengths (the
//! 64-byte VBMI body, its masked tail, the byte loop), and the argument checks.

mod common;
use common::*;
use ghost_runtime::*;

#[test]
fn table_u8_maps_every_byte_on_every_path() {
    let mut rng = Rng::new(41);
    let table: Vec<u8> = (0..256).map(|_| rng.next() as u8).collect();
    for len in [0, 1, 7, 63, 64, 65, 200, 1000, 4097] {
        let x: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let want: Vec<u8> = x.iter().map(|&b| table[b as usize]).collect();
        for k in int8_isas() {
            let mut y = vec![3u8; len + 5];
            k.table_u8(&table, len, &x, &mut y).unwrap();
            assert_eq!(y[..len], want[..], "{:?} len {len}", k.isa());
            assert!(
                y[len..].iter().all(|&b| b == 3),
                "{:?} wrote past len",
                k.isa()
            );
        }
    }
}

#[test]
fn table_u8_checks_its_arguments() {
    let k = Kernels::new();
    let (x, mut y) = ([0u8; 8], [0u8; 8]);
    let e = k
        .table_u8(&[0u8; 255], 8, &x, &mut y)
        .unwrap_err()
        .to_string();
    assert!(e.contains("table") && e.contains("256"), "{e}");
    let e = k
        .table_u8(&[0u8; 256], 9, &x, &mut y)
        .unwrap_err()
        .to_string();
    assert!(e.contains("input"), "{e}");
    let e = k
        .table_u8(&[0u8; 256], 8, &x, &mut y[..7])
        .unwrap_err()
        .to_string();
    assert!(e.contains("output"), "{e}");
}
