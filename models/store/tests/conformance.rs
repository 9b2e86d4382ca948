//! The same guarantees on every backend: a local directory, and S3 through a real S3 API server
//! (moto, started by `make test`).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use litehouse_store::{testing, Condition, Store, StoreError};

async fn each_backend(test: &str, suite: impl AsyncFn(Store)) {
    let dir = tempfile::tempdir().unwrap();
    suite(Store::open(dir.path().to_str().unwrap()).await.unwrap()).await;
    if let Some(s3) = testing::s3_store(test).await {
        suite(s3).await;
    }
}

#[tokio::test]
async fn get_put_list_delete() {
    each_backend("basics", async |store| {
        let err = store.get("a/missing.json").await.unwrap_err();
        assert!(err.is_not_found(), "{err}");
        assert!(err.to_string().contains("a/missing.json"), "{err}");
        assert_eq!(store.etag("a/missing.json").await.unwrap(), None);

        let e1 = store
            .put("m/x/1.bin", b"one".to_vec(), Condition::Always)
            .await
            .unwrap();
        store
            .put("m/x/2.bin", b"two".to_vec(), Condition::Always)
            .await
            .unwrap();
        store
            .put("m/y.bin", b"y".to_vec(), Condition::Always)
            .await
            .unwrap();
        store
            .put("n/z.bin", b"z".to_vec(), Condition::Always)
            .await
            .unwrap();

        let got = store.get("m/x/1.bin").await.unwrap();
        assert_eq!(got.bytes, b"one");
        assert_eq!(got.etag, e1);
        assert_eq!(store.etag("m/x/1.bin").await.unwrap(), Some(e1.clone()));

        assert_eq!(
            store.list("m/").await.unwrap(),
            ["m/x/1.bin", "m/x/2.bin", "m/y.bin"]
        );
        assert_eq!(
            store.list("m/x/").await.unwrap(),
            ["m/x/1.bin", "m/x/2.bin"]
        );
        assert_eq!(store.list("m/x/1").await.unwrap(), ["m/x/1.bin"]);
        assert!(store.list("nothing/").await.unwrap().is_empty());
        assert_eq!(store.list("").await.unwrap().len(), 4);

        let e2 = store
            .put("m/x/1.bin", b"uno".to_vec(), Condition::Always)
            .await
            .unwrap();
        assert_ne!(e1, e2, "the etag changes with the content");

        store.delete("m/x/1.bin").await.unwrap();
        assert!(store.get("m/x/1.bin").await.unwrap_err().is_not_found());
        store.delete("m/x/1.bin").await.unwrap(); // idempotent
        assert_eq!(store.list("m/x/").await.unwrap(), ["m/x/2.bin"]);

        let bad = store
            .put("../escape", vec![], Condition::Always)
            .await
            .unwrap_err();
        assert!(matches!(bad, StoreError::InvalidKey { .. }), "{bad}");
    })
    .await;
}

#[tokio::test]
async fn conditional_writes() {
    each_backend("conditional", async |store| {
        let e1 = store
            .put("doc.json", b"1".to_vec(), Condition::IfAbsent)
            .await
            .unwrap();
        let again = store
            .put("doc.json", b"x".to_vec(), Condition::IfAbsent)
            .await
            .unwrap_err();
        assert!(again.is_precondition_failed(), "{again}");
        assert_eq!(
            store.get("doc.json").await.unwrap().bytes,
            b"1",
            "nothing lost"
        );

        let e2 = store
            .put("doc.json", b"2".to_vec(), Condition::IfMatch(e1.clone()))
            .await
            .unwrap();
        let stale = store
            .put("doc.json", b"3".to_vec(), Condition::IfMatch(e1))
            .await
            .unwrap_err();
        assert!(stale.is_precondition_failed(), "{stale}");
        assert_eq!(store.get("doc.json").await.unwrap().bytes, b"2");

        let gone = store
            .put("other.json", b"1".to_vec(), Condition::IfMatch(e2))
            .await
            .unwrap_err();
        assert!(gone.is_precondition_failed(), "{gone}");
        assert!(store.get("other.json").await.unwrap_err().is_not_found());
    })
    .await;
}

/// Many writers racing on one counter by compare-and-swap: every increment lands exactly once.
#[tokio::test]
async fn compare_and_swap_loses_nothing() {
    each_backend("cas", async |store| {
        store
            .put("counter", b"0".to_vec(), Condition::IfAbsent)
            .await
            .unwrap();
        let store = Arc::new(store);
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move {
                    loop {
                        let cur = store.get("counter").await.unwrap();
                        let n: u32 = std::str::from_utf8(&cur.bytes).unwrap().parse().unwrap();
                        let next = (n + 1).to_string().into_bytes();
                        match store
                            .put("counter", next, Condition::IfMatch(cur.etag))
                            .await
                        {
                            Ok(_) => return,
                            Err(e) if e.is_precondition_failed() => {
                                tokio::time::sleep(std::time::Duration::from_millis(fastrand::u64(
                                    1..10,
                                )))
                                .await
                            }
                            Err(e) => panic!("{e}"),
                        }
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(store.get("counter").await.unwrap().bytes, b"20");
    })
    .await;
}

/// Only one of many concurrent create-only writes of the same key wins.
#[tokio::test]
async fn create_only_has_one_winner() {
    each_backend("create-only", async |store| {
        let store = Arc::new(store);
        let tasks: Vec<_> = (0..10)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .put("claim", vec![i as u8], Condition::IfAbsent)
                        .await
                        .is_ok()
                })
            })
            .collect();
        let mut winners = 0;
        for t in tasks {
            winners += usize::from(t.await.unwrap());
        }
        assert_eq!(winners, 1);
    })
    .await;
}

#[tokio::test]
async fn bad_uris_are_refused() {
    let err = Store::open("gs://bucket").await.unwrap_err();
    assert!(err.to_string().contains("supported: s3://"), "{err}");
    let err = Store::open("s3://").await.unwrap_err();
    assert!(err.to_string().contains("s3://bucket"), "{err}");
}
