//! The registry and endpoint rules against a real store: a local directory, and S3 through moto's
//! S3 server (started by `make test`).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use litehouse_registry::{DeployRequest, Registry, RegistryError, TrafficSplit, UploadRequest};
use litehouse_store::{testing, Condition, Store};

fn model_bytes(file: &str) -> Vec<u8> {
    let path = format!(
        "{}/../runtime/testdata/exported/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

async fn each_backend(test: &str, suite: impl AsyncFn(Registry)) {
    let dir = tempfile::tempdir().unwrap();
    let local = Store::open(dir.path().to_str().unwrap()).await.unwrap();
    suite(Registry::new(local)).await;
    if let Some(s3) = testing::s3_store(test).await {
        suite(Registry::new(s3)).await;
    }
}

fn upload(name: &str) -> UploadRequest {
    UploadRequest {
        name: name.into(),
        description: "test".into(),
        metrics: BTreeMap::from([("rmse".to_string(), 1.5)]),
        ..Default::default()
    }
}

fn split(pairs: &[(&str, u32)]) -> TrafficSplit {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

#[tokio::test]
async fn versions_manifests_and_aliases() {
    each_backend("versions", async |reg| {
        let bytes = model_bytes("tabular_int8_float_io.tflite");
        let m1 = reg.upload(bytes.clone(), upload("linnerud")).await.unwrap();
        let m2 = reg.upload(bytes.clone(), upload("linnerud")).await.unwrap();
        assert_eq!((m1.version, m2.version), (1, 2));
        assert_eq!(m1.size_bytes, bytes.len() as u64);
        assert_eq!(m1.signature.inputs[0].shape, vec![-1, 3]);
        assert_eq!(m1.metrics["rmse"], 1.5);
        assert!(m1.operators.contains_key("FULLY_CONNECTED"));
        assert_eq!(reg.manifest("linnerud", 2).await.unwrap(), m2);

        // Concurrent uploads never share a version.
        let reg = Arc::new(reg);
        let tasks: Vec<_> = (0..6)
            .map(|_| {
                let (reg, bytes) = (reg.clone(), bytes.clone());
                tokio::spawn(
                    async move { reg.upload(bytes, upload("linnerud")).await.unwrap().version },
                )
            })
            .collect();
        let mut got = Vec::new();
        for t in tasks {
            got.push(t.await.unwrap());
        }
        got.sort();
        assert_eq!(got, [3, 4, 5, 6, 7, 8]);

        // Aliases move atomically and resolve.
        reg.set_alias("linnerud", "champion", Some(2), "test", "first")
            .await
            .unwrap();
        reg.set_alias("linnerud", "champion", Some(5), "test", "better")
            .await
            .unwrap();
        assert_eq!(reg.resolve("linnerud", "champion").await.unwrap(), 5);
        assert_eq!(reg.resolve("linnerud", "latest").await.unwrap(), 8);
        assert_eq!(reg.resolve("linnerud", "3").await.unwrap(), 3);
        let aliases = reg.aliases("linnerud").await.unwrap();
        assert_eq!(aliases.history.len(), 2);
        assert_eq!(
            (aliases.history[1].from, aliases.history[1].to),
            (Some(2), Some(5))
        );
        let err = reg.resolve("linnerud", "canary").await.unwrap_err();
        assert!(err.to_string().contains("aliases: champion"), "{err}");
        let err = reg
            .set_alias("linnerud", "champion", Some(99), "t", "")
            .await
            .unwrap_err();
        assert!(matches!(err, RegistryError::NotFound(_)), "{err}");

        let models = reg.models().await.unwrap();
        assert_eq!(models.len(), 1);
        assert_eq!(models[0].versions, (1..=8).collect::<Vec<_>>());
        assert_eq!(models[0].aliases["champion"], 5);

        // Delete: the alias pointing at it goes too; the number is never reused.
        reg.delete_version("linnerud", 5).await.unwrap();
        assert!(reg.aliases("linnerud").await.unwrap().aliases.is_empty());
        assert!(matches!(
            reg.manifest("linnerud", 5).await,
            Err(RegistryError::NotFound(_))
        ));
        let m9 = reg.upload(bytes.clone(), upload("linnerud")).await.unwrap();
        assert_eq!(m9.version, 9);
    })
    .await;
}

#[tokio::test]
async fn bad_uploads_are_refused() {
    each_backend("bad-uploads", async |reg| {
        let err = reg
            .upload(b"not a model".to_vec(), upload("x"))
            .await
            .unwrap_err();
        assert!(matches!(err, RegistryError::Model(_)), "{err}");
        let err = reg
            .upload(
                model_bytes("tabular_int8_float_io.tflite"),
                upload("Bad/Name"),
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("invalid model name"), "{err}");
        assert!(reg.models().await.unwrap().is_empty(), "nothing registered");
    })
    .await;
}

#[tokio::test]
async fn corrupted_artifacts_are_refused() {
    each_backend("integrity", async |reg| {
        let bytes = model_bytes("tabular_int8_float_io.tflite");
        let m = reg.upload(bytes.clone(), upload("linnerud")).await.unwrap();
        let (_, got) = reg.artifact("linnerud", 1, Some(&m.sha256)).await.unwrap();
        assert_eq!(got, bytes);
        let mut tampered = bytes.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        reg.store()
            .put(
                "models/linnerud/versions/1/model.tflite",
                tampered,
                Condition::Always,
            )
            .await
            .unwrap();
        let err = reg.artifact("linnerud", 1, None).await.unwrap_err();
        assert!(matches!(err, RegistryError::Integrity { .. }), "{err}");
        assert!(err.to_string().contains("sha256 mismatch"), "{err}");
        assert!(err.to_string().contains(&m.sha256), "{err}");
    })
    .await;
}

#[tokio::test]
async fn endpoints_follow_vertex_rules() {
    each_backend("endpoints", async |reg| {
        let bytes = model_bytes("tabular_int8_float_io.tflite");
        reg.upload(bytes.clone(), upload("linnerud")).await.unwrap();
        reg.upload(bytes.clone(), upload("linnerud")).await.unwrap();
        reg.set_alias("linnerud", "challenger", Some(2), "t", "")
            .await
            .unwrap();

        let e = reg
            .create_endpoint("lin", Some("Linnerud"), "")
            .await
            .unwrap();
        assert_eq!(e.display_name, "Linnerud");
        let err = reg.create_endpoint("lin", None, "").await.unwrap_err();
        assert!(matches!(err, RegistryError::AlreadyExists(_)), "{err}");

        let champion = DeployRequest {
            model: "linnerud".into(),
            version: "1".into(),
            traffic_split: Some(split(&[("0", 100)])),
            ..Default::default()
        };
        let (_, d1) = reg.deploy("lin", &champion, None).await.unwrap();
        let challenger = DeployRequest {
            model: "linnerud".into(),
            version: "challenger".into(),
            display_name: Some("challenger".into()),
            traffic_split: Some(split(&[(&d1.id, 90), ("0", 10)])),
            ..Default::default()
        };
        let (e, d2) = reg.deploy("lin", &challenger, None).await.unwrap();
        assert_eq!(d2.version, 2);
        assert_eq!(e.traffic_split, split(&[("1", 90), ("2", 10)]));

        // Guards: deleting a deployed version or an endpoint with models.
        let err = reg.delete_version("linnerud", 2).await.unwrap_err();
        assert!(
            err.to_string().contains("deployed on endpoint 'lin'"),
            "{err}"
        );
        let err = reg.delete_endpoint("lin").await.unwrap_err();
        assert!(matches!(err, RegistryError::FailedPrecondition(_)), "{err}");
        let err = reg.undeploy("lin", "2", None, None).await.unwrap_err();
        assert!(matches!(err, RegistryError::FailedPrecondition(_)), "{err}");

        // A stale etag is ABORTED, the current one applies.
        let stale = e.etag.clone();
        let e = reg
            .set_traffic_split("lin", &split(&[("1", 50), ("2", 50)]), Some(&stale))
            .await
            .unwrap();
        let err = reg
            .set_traffic_split("lin", &split(&[("1", 100)]), Some(&stale))
            .await
            .unwrap_err();
        assert!(matches!(err, RegistryError::Aborted(_)), "{err}");
        assert_eq!(
            reg.endpoint("lin").await.unwrap().traffic_split,
            e.traffic_split
        );

        let e = reg
            .undeploy("lin", "2", Some(&split(&[("1", 100)])), None)
            .await
            .unwrap();
        assert_eq!(e.deployed_models.len(), 1);
        let e = reg.undeploy("lin", "1", None, None).await.unwrap();
        assert!(e.traffic_split.is_empty());
        assert_eq!(reg.endpoints().await.unwrap().len(), 1);
        reg.delete_endpoint("lin").await.unwrap();
        assert!(reg.endpoints().await.unwrap().is_empty());
        assert!(matches!(
            reg.endpoint("lin").await,
            Err(RegistryError::NotFound(_))
        ));
        reg.delete_version("linnerud", 2).await.unwrap();
    })
    .await;
}

/// 50 tasks each move one percent from deployed model 1 to 2 by read-modify-write: with any lost
/// update the final split would show fewer than 50 moved.
#[tokio::test]
async fn fifty_concurrent_split_updates_lose_nothing() {
    each_backend("split-race", async |reg| {
        let bytes = model_bytes("tabular_int8_float_io.tflite");
        reg.upload(bytes, upload("m")).await.unwrap();
        reg.create_endpoint("race", None, "").await.unwrap();
        for s in [split(&[("0", 100)]), split(&[("1", 100), ("0", 0)])] {
            let req = DeployRequest {
                model: "m".into(),
                version: "1".into(),
                traffic_split: Some(s),
                ..Default::default()
            };
            reg.deploy("race", &req, None).await.unwrap();
        }
        let reg = Arc::new(reg);
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let reg = reg.clone();
                tokio::spawn(async move {
                    reg.update_endpoint("race", None, |e| {
                        let mut s = e.traffic_split.clone();
                        *s.get_mut("1").unwrap() -= 1;
                        *s.get_mut("2").unwrap() += 1;
                        e.apply_split(s)
                    })
                    .await
                    .unwrap();
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let e = reg.endpoint("race").await.unwrap();
        assert_eq!(e.traffic_split, split(&[("1", 50), ("2", 50)]));
    })
    .await;
}
