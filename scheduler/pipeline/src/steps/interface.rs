//! The built-in steps' inputs and outputs: what the checker types a pipeline file against, what
//! the compiler writes as component definitions, and what `litehouse step` parses.

use crate::types::{ArtifactType, PortType, ValueType};

/// What an input holds when the pipeline file does not bind it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fallback {
    /// The file must bind it.
    Required,
    /// May stay unbound (an optional artifact).
    Optional,
    /// This string.
    Str(&'static str),
    /// This integer.
    Int(i64),
    /// This number.
    Num(f64),
    /// This boolean.
    Bool(bool),
}

impl Fallback {
    /// The default as JSON, when it has one.
    pub fn value(self) -> Option<serde_json::Value> {
        match self {
            Fallback::Required | Fallback::Optional => None,
            Fallback::Str(s) => Some(s.into()),
            Fallback::Int(i) => Some(i.into()),
            Fallback::Num(n) => Some(n.into()),
            Fallback::Bool(b) => Some(b.into()),
        }
    }
}

/// One input or output of a step.
#[derive(Debug, Clone, Copy)]
pub struct Port {
    /// Its name (`dataset`, `epochs`).
    pub name: &'static str,
    /// What it carries.
    pub ty: PortType,
    /// The default (inputs only).
    pub fallback: Fallback,
    /// One line for `--help` and the docs.
    pub help: &'static str,
}

/// A built-in step.
#[derive(Debug)]
pub struct Interface {
    /// The name a pipeline file `uses`.
    pub kind: &'static str,
    /// One line.
    pub summary: &'static str,
    /// Inputs.
    pub inputs: &'static [Port],
    /// Outputs.
    pub outputs: &'static [Port],
    /// Whether a re-run with the same inputs may reuse the last outputs. Steps that read the
    /// outside world (ingest reads a URI whose contents may change; gate, register and deploy
    /// read and move the registry) always run; they are idempotent instead.
    pub cacheable: bool,
}

const fn input(name: &'static str, ty: PortType, fallback: Fallback, help: &'static str) -> Port {
    Port {
        name,
        ty,
        fallback,
        help,
    }
}

const fn output(name: &'static str, ty: PortType, help: &'static str) -> Port {
    Port {
        name,
        ty,
        fallback: Fallback::Required,
        help,
    }
}

const STR: PortType = PortType::Value(ValueType::String);
const INT: PortType = PortType::Value(ValueType::Integer);
const NUM: PortType = PortType::Value(ValueType::Number);
const BOOL: PortType = PortType::Value(ValueType::Boolean);
const DATASET: PortType = PortType::Artifact(ArtifactType::Dataset);
const MODEL: PortType = PortType::Artifact(ArtifactType::Model);
const METRICS: PortType = PortType::Artifact(ArtifactType::Metrics);
const SCHEMA: PortType = PortType::Artifact(ArtifactType::Schema);

/// The input every registry-facing step takes; bound to the pipeline parameter `store` when the
/// file leaves it out.
pub const STORE: &str = "store";

const STORE_PORT: Port = input(
    STORE,
    STR,
    Fallback::Str(""),
    "registry store URI (empty: the runner's store, or LITEHOUSE_STORE)",
);

/// ingest: copy the data at a URI into a dataset artifact.
pub const INGEST: Interface = Interface {
    kind: "ingest",
    summary: "copy data from a file, directory or s3:// URI into a dataset, with its content hash",
    inputs: &[
        input(
            "data",
            STR,
            Fallback::Required,
            "file, directory, s3://bucket/key or s3://bucket/prefix/",
        ),
        input(
            "format",
            STR,
            Fallback::Str("auto"),
            "auto, idx, csv, jsonl, images, file-list",
        ),
        input(
            "label",
            STR,
            Fallback::Str(""),
            "label column(s) or field(s) of CSV and JSONL, comma-separated",
        ),
        input(
            "task",
            STR,
            Fallback::Str("classify"),
            "classify or regress",
        ),
        input("delimiter", STR, Fallback::Str(","), "CSV delimiter"),
    ],
    outputs: &[
        output("dataset", DATASET, "the data files and dataset.json"),
        output(
            "data_hash",
            STR,
            "sha256 of the data files (the snapshot's identity)",
        ),
    ],
    cacheable: false,
};

/// validate: infer or check a data schema.
pub const VALIDATE: Interface = Interface {
    kind: "validate",
    summary: "check a dataset against the model's stored schema (inferred on the first run); fail past a number of anomalies",
    inputs: &[
        input("dataset", DATASET, Fallback::Required, "the data"),
        input("name", STR, Fallback::Required, "model whose schema the data must follow"),
        input("max_anomalies", INT, Fallback::Int(0), "anomalies allowed before the run fails"),
        input("range_tolerance", NUM, Fallback::Num(0.1), "how far past the schema's range a value may go, as a fraction of the range"),
        input("max_out_of_range", NUM, Fallback::Num(0.01), "fraction of a column's values allowed outside the range"),
        STORE_PORT,
    ],
    outputs: &[
        output("schema", SCHEMA, "the schema the data was checked against (or inferred), with the anomalies"),
        output("anomalies", INT, "how many anomalies were found"),
    ],
    cacheable: true,
};

/// train: the training job of `litehouse train`.
pub const TRAIN: Interface = Interface {
    kind: "train",
    summary: "train an MLP or CNN (or search) and export int8 or float32 TFLite, scored on the test split",
    inputs: &[
        input("dataset", DATASET, Fallback::Required, "the data"),
        input("arch", STR, Fallback::Str("mlp"), "mlp or cnn"),
        input("hidden", STR, Fallback::Str("128"), "units of each hidden layer, comma-separated (empty: none)"),
        input("filters", STR, Fallback::Str("32,64"), "CNN filters of each convolution"),
        input("kernel", INT, Fallback::Int(3), "CNN kernel size"),
        input("dropout", NUM, Fallback::Num(0.2), "dropout after each hidden layer"),
        input("epochs", INT, Fallback::Int(10), "most epochs"),
        input("batch_size", INT, Fallback::Int(32), "examples per step"),
        input("learning_rate", NUM, Fallback::Num(0.001), "Adam's learning rate"),
        input("patience", INT, Fallback::Int(2), "epochs without improvement before stopping"),
        input("weight_decay", NUM, Fallback::Num(0.0), "L2 weight decay (0: none)"),
        input("seed", INT, Fallback::Int(42), "weights, shuffles and splits"),
        input("validation", NUM, Fallback::Num(0.1), "validation fraction"),
        input("test", NUM, Fallback::Num(0.1), "test fraction (ignored when the data ships a test set)"),
        input("quantize", STR, Fallback::Str("int8"), "int8 or none"),
        input("io", STR, Fallback::Str("float"), "int8 model boundary: float, int8 or uint8"),
        input("search", STR, Fallback::Str(""), "a search space file (TOML or JSON); empty: no search"),
        input("trials", INT, Fallback::Int(0), "random-search trials (0: the file's own)"),
    ],
    outputs: &[
        output("model", MODEL, "model.tflite, model.json, metrics.json, split.json"),
        output("score", NUM, "the written model's test score (accuracy, or mean R2)"),
    ],
    cacheable: true,
};

/// evaluate: the candidate and the champion on the same test data.
pub const EVALUATE: Interface = Interface {
    kind: "evaluate",
    summary: "score the candidate and the current champion in the runtime on the same test split",
    inputs: &[
        input(
            "dataset",
            DATASET,
            Fallback::Required,
            "the data the candidate was trained on",
        ),
        input("model", MODEL, Fallback::Required, "the candidate"),
        input(
            "name",
            STR,
            Fallback::Required,
            "registry model whose champion is compared",
        ),
        STORE_PORT,
    ],
    outputs: &[output("metrics", METRICS, "candidate and champion figures")],
    cacheable: false,
};

/// gate: the promotion rule.
pub const GATE: Interface = Interface {
    kind: "gate",
    summary:
        "pass when the candidate meets a threshold AND is no worse than the champion by a margin",
    inputs: &[
        input("metrics", METRICS, Fallback::Required, "from evaluate"),
        input(
            "metric",
            STR,
            Fallback::Str("auto"),
            "accuracy, loss, r2, mse, mae_<output>, r2_<output>; auto: accuracy or r2",
        ),
        input(
            "threshold",
            NUM,
            Fallback::Required,
            "the candidate must reach it (at least for scores, at most for errors)",
        ),
        input(
            "margin",
            NUM,
            Fallback::Num(0.0),
            "how much worse than the champion the candidate may be",
        ),
    ],
    outputs: &[
        output(
            "passed",
            BOOL,
            "whether the candidate may be registered and deployed",
        ),
        output("reason", STR, "why, with the figures"),
    ],
    cacheable: false,
};

/// register: a new registry version.
pub const REGISTER: Interface = Interface {
    kind: "register",
    summary: "register the model as the next version, with metrics, lineage and the data schema",
    inputs: &[
        input("model", MODEL, Fallback::Required, "the candidate"),
        input("name", STR, Fallback::Required, "registry model name"),
        input(
            "metrics",
            METRICS,
            Fallback::Optional,
            "evaluate's figures (else the model's own)",
        ),
        input(
            "schema",
            SCHEMA,
            Fallback::Optional,
            "stored with the model when it has none yet",
        ),
        input(
            "data_hash",
            STR,
            Fallback::Str(""),
            "the data snapshot, for the lineage",
        ),
        input(
            "data",
            STR,
            Fallback::Str(""),
            "the data URI, for the lineage",
        ),
        STORE_PORT,
    ],
    outputs: &[output(
        "version",
        INT,
        "the registered version (an identical model reuses its version)",
    )],
    cacheable: false,
};

/// deploy: champion or challenger.
pub const DEPLOY: Interface = Interface {
    kind: "deploy",
    summary: "deploy a version: the first as champion at 100%, later ones as challenger beside it",
    inputs: &[
        input("name", STR, Fallback::Required, "registry model name"),
        input("version", INT, Fallback::Required, "the version to deploy"),
        input(
            "endpoint",
            STR,
            Fallback::Str(""),
            "endpoint id (empty: the model name)",
        ),
        input(
            "traffic",
            INT,
            Fallback::Int(10),
            "challenger's percent of traffic",
        ),
        STORE_PORT,
    ],
    outputs: &[
        output("role", STR, "champion or challenger"),
        output(
            "deployed_model",
            STR,
            "the deployed model id on the endpoint",
        ),
    ],
    cacheable: false,
};

/// Every built-in step.
pub const BUILTINS: &[&Interface] = &[
    &INGEST, &VALIDATE, &TRAIN, &EVALUATE, &GATE, &REGISTER, &DEPLOY,
];

/// Why `kind` names no built-in step, listing those that exist.
pub fn unknown(kind: &str) -> String {
    format!(
        "unknown step '{kind}' (steps: {})",
        BUILTINS
            .iter()
            .map(|i| i.kind)
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// A built-in step by name.
pub fn builtin(kind: &str) -> Option<&'static Interface> {
    BUILTINS.iter().copied().find(|i| i.kind == kind)
}

impl PartialEq for Interface {
    /// Built-in steps are singletons: one per kind.
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind
    }
}

impl Interface {
    /// An input port by name.
    pub fn input(&self, name: &str) -> Option<&Port> {
        self.inputs.iter().find(|p| p.name == name)
    }

    /// An output port by name.
    pub fn output(&self, name: &str) -> Option<&Port> {
        self.outputs.iter().find(|p| p.name == name)
    }
}

/// Names of ports, for messages.
pub fn names(ports: &[Port]) -> String {
    ports.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
}
