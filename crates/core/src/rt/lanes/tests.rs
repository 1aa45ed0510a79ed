use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::rt;

#[tokio::test]
async fn admission_is_bounded_and_given_back() {
    let lanes = Lanes::new(1, 2);
    let d = Deadline::after(Duration::from_secs(5));
    let a = lanes.admit(d).unwrap();
    let _b = lanes.admit(d).unwrap();
    assert_eq!(lanes.admit(d).unwrap_err(), LaneError::Full { limit: 2 });
    drop(a);
    assert_eq!(lanes.admitted(), 1);
    assert!(lanes.admit(d).is_ok());
    let past = Deadline::after(Duration::ZERO);
    assert_eq!(lanes.admit(past).unwrap_err(), LaneError::DeadlineExceeded);
}

#[tokio::test]
async fn a_small_request_waits_one_chunk_not_the_whole_heavy_one() {
    let lanes = Arc::new(Lanes::new(1, 8));
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let heavy = {
        let (lanes, order) = (lanes.clone(), order.clone());
        rt::spawn(async move {
            let t = lanes
                .admit(Deadline::after(Duration::from_secs(30)))
                .unwrap();
            for i in 0..20 {
                let o = order.clone();
                t.compute(move || o.lock().unwrap().push(format!("heavy{i}")))
                    .await
                    .unwrap();
                rt::sleep(Duration::from_millis(1)).await;
            }
        })
    };
    rt::sleep(Duration::from_millis(3)).await;
    let t = lanes
        .admit(Deadline::after(Duration::from_secs(30)))
        .unwrap();
    let o = order.clone();
    t.in_place(move || o.lock().unwrap().push("small".to_string()))
        .await
        .unwrap();
    heavy.await.unwrap();
    let order = order.lock().unwrap();
    let small_at = order.iter().position(|s| s == "small").unwrap();
    assert!(
        small_at < 10,
        "the small request ran after {small_at} heavy chunks"
    );
}

#[tokio::test]
async fn an_expired_deadline_stops_between_chunks() {
    let lanes = Lanes::new(1, 8);
    let t = lanes
        .admit(Deadline::after(Duration::from_millis(20)))
        .unwrap();
    let mut done = 0;
    let err = loop {
        match t.compute(|| ()).await {
            Ok(()) => done += 1,
            Err(e) => break e,
        }
        rt::sleep(Duration::from_millis(5)).await;
    };
    assert_eq!(err, LaneError::DeadlineExceeded);
    assert!((1..10).contains(&done), "{done} chunks ran");
}

#[test]
fn chunks_hold_about_the_chunk_work() {
    assert_eq!(chunk_len(100, CHUNK_WORK * 4), 1);
    assert_eq!(chunk_len(100, 1), 100);
    assert_eq!(chunk_len(0, 1), 1);
    assert_eq!(chunk_len(1 << 20, CHUNK_WORK / 64), 64);
}

/// A chunk run in place must not hold an async worker: with one worker, a chunk that
/// waits for another task could only finish if that task runs on a thread the chunk
/// does not occupy. Run on the worker itself, it would wait out its timeout.
#[cfg(not(madsim))]
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_chunk_in_place_leaves_the_async_workers_free() {
    let lanes = Arc::new(Lanes::new(1, 8));
    let chunk = rt::spawn(async move {
        let t = lanes
            .admit(Deadline::after(Duration::from_secs(30)))
            .unwrap();
        t.in_place(|| {
            let (tx, rx) = std::sync::mpsc::channel();
            rt::spawn(async move { tx.send(()).unwrap() });
            rx.recv_timeout(Duration::from_secs(3)).is_ok()
        })
        .await
        .unwrap()
    });
    assert!(
        chunk.await.unwrap(),
        "a task spawned while a chunk ran never ran: the chunk held the only worker"
    );
}
